"""Stopped: the terminal state after a shutdown request.

On entry: every call ends (its peer is closed), the camera, the audio devices
and the socket are released, and every pending timer is cancelled. Tokens
are kept on disk. Every later event is ignored, except the answer to a
refresh that was under way: the server may have rotated the refresh token
already, so it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def release_everything(ctx: Context) -> None:
    ctx.viewers.release_all("shutdown")
    ctx.close_media()
    ctx.close_socket("shutdown")
    ctx.cancel_all_timers()


SPEC = StateSpec(state=State.STOPPED, on_enter=release_everything, final=True)
