"""The lifecycle's states, one module each.

Each module's docstring says what the state means and what the machine asks
of the outside world on entry and exit; ``STATE_SPECS`` collects them in the
lifecycle's order.
"""

from intercom_fsm.states import (
    authorized,
    awaiting_approval,
    backoff,
    connecting,
    idle,
    negotiating,
    stopped,
    streaming,
    unauthorized,
)
from intercom_fsm.states.base import State, StateAction, StateSpec

STATE_SPECS: dict[State, StateSpec] = {
    spec.state: spec
    for spec in (
        idle.SPEC,
        unauthorized.SPEC,
        awaiting_approval.SPEC,
        authorized.SPEC,
        connecting.SPEC,
        negotiating.SPEC,
        streaming.SPEC,
        backoff.SPEC,
        stopped.SPEC,
    )
}

ONLINE_STATES = frozenset({State.CONNECTING, State.NEGOTIATING, State.STREAMING})
"""The online group: a socket is open or opening. Leaving it closes the socket,
every peer and the camera."""

SESSION_STATES = frozenset({State.NEGOTIATING, State.STREAMING})
"""States in which viewer sessions exist and receive their events."""

__all__ = ["ONLINE_STATES", "SESSION_STATES", "STATE_SPECS", "State", "StateAction", "StateSpec"]
