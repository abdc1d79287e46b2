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
"""A socket is open or opening. Leaving these states closes the socket; calls
whose media flows are held meanwhile."""

__all__ = ["ONLINE_STATES", "STATE_SPECS", "State", "StateAction", "StateSpec"]
