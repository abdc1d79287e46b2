"""Streaming: the socket is open and at least one viewer's peer carries media.

The machine is in Streaming exactly while the socket is open and at least one
session is ``Connected``; when the last one ends it goes back to Negotiating
by itself. The access token is refreshed in the background before it expires,
without touching the socket or the peers. When the socket drops, the calls
are held (their media keeps flowing) while the machine backs off and
reconnects: a drop does not end calls (protocol.md 3.3).
"""

from intercom_fsm.states.base import State, StateSpec

SPEC = StateSpec(state=State.STREAMING)
