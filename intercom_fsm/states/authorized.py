"""Authorized: the device holds a grant but no signaling socket.

On entry: when the access token is expired, about to expire or was refused by
the backend, the auth adapter is asked to refresh it (``RefreshTokens``,
protocol.md 1.3), unless a refresh is already under way. With a fresh access
token the machine moves on to Connecting by itself (an eventless transition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def refresh_if_stale(ctx: Context) -> None:
    if not ctx.access_token_fresh():
        ctx.request_refresh()


SPEC = StateSpec(
    state=State.AUTHORIZED,
    on_enter=refresh_if_stale,
)
