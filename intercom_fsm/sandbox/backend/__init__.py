"""The sandbox's Django app (label ``sandbox``): device records, OAuth wrappers, sockets, pages.

The modules that need no Django (:mod:`.pacing`, :mod:`.faults`, :mod:`.live`)
can be imported on their own; the rest expect Django to be configured by
:mod:`intercom_fsm.sandbox.settings`.
"""
