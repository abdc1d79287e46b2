"""Idle: the machine exists but has not been started.

The runtime (or an embedding product) loads the token store and sends
``Started(tokens)``: with a usable grant the machine goes to Authorized,
without one to Unauthorized. Nothing is asked of the outside world here.
"""

from intercom_fsm.states.base import State, StateSpec

SPEC = StateSpec(
    state=State.IDLE,
)
