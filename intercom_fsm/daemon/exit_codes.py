"""The exit codes of the ``intercom-fsm`` commands (the README lists them)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
"""Not authorized, or the daemon failed."""
EXIT_USAGE = 2
"""A wrong setting (the message names the variable) or command line."""
EXIT_CLIENT_REJECTED = 3
"""The server rejects this client (``invalid_client``, ``unauthorized_client``):
OAUTH_CLIENT_ID or OAUTH_CLIENT_SECRET is wrong; retrying will not help."""
EXIT_LOCKED = 4
"""Another process holds the token file's lock (a daemon, login or logout)."""
