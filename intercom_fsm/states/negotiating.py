"""Negotiating: the socket is open and no viewer is receiving media yet.

On entry from Connecting the camera is opened (``OpenCamera``), so that the
first viewer's frames do not wait for the camera to start. Viewers' offers,
ICE candidates and hangups go to their session machines
(``intercom_fsm.machine.session``); when one session's peer connects, the
machine moves to Streaming. Socket failures lead to Backoff or Authorized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def open_camera(ctx: Context) -> None:
    ctx.open_camera()


SPEC = StateSpec(
    state=State.NEGOTIATING,
    summary="socket open: answering viewers' offers, none streaming yet",
    on_enter=open_camera,
)
