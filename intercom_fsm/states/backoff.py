"""Backoff: waiting before trying again after a failure.

On entry: a timer is set to a delay drawn with full jitter from
``[0, min(cap, base * 2**attempt)]`` (``intercom_fsm.machine.backoff``), or
the server's Retry-After (or the pause after a denial) when that is longer,
still at most the cap; after a rejected client, a long pause instead.
``BackoffElapsed`` resumes the state recorded by the failure (Unauthorized,
AwaitingApproval or Authorized). Tokens are kept; a refresh that was under way
may still land here and is stored; calls held through the socket's loss go
on.
On exit: the timer is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.effects import Timer
from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def schedule_retry(ctx: Context) -> None:
    ctx.schedule(Timer.BACKOFF, ctx.retry_delay())


def cancel_retry(ctx: Context) -> None:
    ctx.cancel(Timer.BACKOFF)


SPEC = StateSpec(
    state=State.BACKOFF,
    on_enter=schedule_retry,
    on_exit=cancel_retry,
)
