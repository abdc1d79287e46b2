"""The sandbox backend: a real intercom backend on one machine, for development, demos and tests.

It speaks ``protocol.md`` from the backend side with well-kept server parts:
Django and django-oauth-toolkit (the RFC 8628 device authorization grant),
Django Channels served by daphne (the device and viewer WebSockets), SQLite in
a state directory, and a monitor page where a person signs in, approves a
device and watches its stream.

Run it with ``intercom-fsm sandbox`` (or ``python -m intercom_fsm.sandbox``;
``--help`` lists the options): it prints the base URLs, the OAuth client and
the demo user's credentials, and writes them to ``<state_dir>/sandbox.json``
(the client alone to ``<state_dir>/oauth.json``). Ctrl-C or SIGTERM stops it.

Modules, one job each:

* :mod:`.cli`, :mod:`.options`: the command line; :mod:`.server`: one process
  from start to stop; :mod:`.settings`, :mod:`.bootstrap`: Django, tables, demo
  user and OAuth client; :mod:`.daphne_runner`: the ASGI server.
* :mod:`.backend`: the Django app: :mod:`~.backend.oauth_views` (DOT's device
  flow plus ``slow_down``/``expired_token``), :mod:`~.backend.consumers` (the
  sockets and the relay), :mod:`~.backend.page_views` (the monitor page),
  :mod:`~.backend.control_views` (the control API for tests, ``--test-controls``).
* :mod:`.process` and :mod:`.control_client`: start a sandbox subprocess and
  drive its control API from tests and the demo.

Nothing here is imported by ``import intercom_fsm``: Django and its friends are
loaded only when the sandbox runs; :mod:`.process` and :mod:`.control_client`
do not import them either.
"""
