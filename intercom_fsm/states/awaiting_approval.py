"""AwaitingApproval: a user code is shown; the device polls the token endpoint.

On entry: the poll timer is set to the flow's interval (RFC 8628 section 3.4:
wait at least ``interval`` between polls), and the flow's expiry timer to what
is left of ``expires_in`` on the device's monotonic clock. Each ``PollDue``
sends one ``PollToken``; ``authorization_pending`` sets the timer again,
``slow_down`` adds 5 s to the interval for the rest of this flow, a poll that
timed out doubles it. The flow ends when it is approved (to Authorized),
denied or refused by the server (to Backoff, then a new flow), or expired,
answered by the server or passed locally (back to Unauthorized).
On exit: both timers are cancelled (a Backoff that resumes here sets them
again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.effects import Timer
from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def schedule_poll_and_expiry(ctx: Context) -> None:
    if ctx.flow is not None:
        ctx.schedule(Timer.POLL, ctx.flow.interval)
        ctx.schedule(Timer.FLOW_EXPIRY, max(0.0, ctx.flow.expires_at - ctx.monotonic()))


def cancel_poll_and_expiry(ctx: Context) -> None:
    ctx.cancel(Timer.POLL)
    ctx.cancel(Timer.FLOW_EXPIRY)


SPEC = StateSpec(
    state=State.AWAITING_APPROVAL,
    on_enter=schedule_poll_and_expiry,
    on_exit=cancel_poll_and_expiry,
)
