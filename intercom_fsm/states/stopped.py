"""Stopped: the terminal state after a shutdown request.

On entry: every pending timer is cancelled; the online group's exit has
already closed the peers, the camera and the socket. Tokens are kept on disk.
Every later event is ignored, except the answer to a refresh that was under
way: the server may have rotated the refresh token already, so it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def release_everything(ctx: Context) -> None:
    ctx.release_resources("shutdown")


SPEC = StateSpec(
    state=State.STOPPED,
    summary="shut down: every resource released, tokens kept",
    on_enter=release_everything,
    final=True,
)
