"""Streaming: at least one viewer's peer connection carries media.

The machine is in Streaming exactly while at least one session is
``Connected``; when the last one closes, fails or hangs up it goes back to
Negotiating. The access token is refreshed in the background before it
expires, without touching the socket or the peers.
"""

from intercom_fsm.states.base import State, StateSpec

SPEC = StateSpec(
    state=State.STREAMING,
    summary="at least one viewer receives media",
)
