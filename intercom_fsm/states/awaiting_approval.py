"""AwaitingApproval: a user code is shown; the device polls the token endpoint.

On entry: the poll timer is set to the flow's interval (RFC 8628 section 3.4:
wait at least ``interval`` between polls). Each ``PollDue`` sends one
``PollToken``; ``authorization_pending`` sets the timer again, ``slow_down``
adds 5 s to the interval for the rest of this flow. The flow ends when it is
approved (to Authorized), denied (to Backoff, then a new flow), or expired,
answered by the server or passed locally (back to Unauthorized).
On exit: the poll timer is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.effects import Timer
from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def schedule_poll(ctx: Context) -> None:
    if ctx.flow is not None:
        ctx.schedule(Timer.POLL, ctx.flow.interval)


def cancel_poll(ctx: Context) -> None:
    ctx.cancel(Timer.POLL)


SPEC = StateSpec(
    state=State.AWAITING_APPROVAL,
    summary="user code shown: polling the token endpoint",
    on_enter=schedule_poll,
    on_exit=cancel_poll,
)
