"""Negotiating: the socket is open and no viewer is receiving media yet.

On entry the camera (and the microphone and speaker the device has) is opened
(``OpenCamera``...) unless a call held it through a reconnect, so that the
first viewer's frames do not wait for the camera to start. Viewers' offers,
ICE candidates and hangups go to their session machines
(``intercom_fsm.machine.session``); as soon as a session's peer connects (or
a call held through a reconnect is reached again) the machine moves to
Streaming by itself. Socket failures lead to Backoff or Authorized; calls
whose media flows are held meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def open_media(ctx: Context) -> None:
    ctx.open_media()


SPEC = StateSpec(state=State.NEGOTIATING, on_enter=open_media)
