"""Connecting: the signaling socket is being opened.

On entry: the signaling adapter is asked to open
``/ws/live_stream/{device_code}/`` with the Bearer access token
(``OpenSocket``). Leaves on ``SocketOpened`` (to Negotiating), a refused token
(to Authorized, to refresh), or any other failure (to Backoff).

Connecting, Negotiating and Streaming are the states in which a socket is open
or opening: every row that leaves them for another state closes the socket
(``go_offline`` in the table). Calls held through a reconnect keep their media
meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def open_socket(ctx: Context) -> None:
    ctx.open_socket()


SPEC = StateSpec(state=State.CONNECTING, on_enter=open_socket)
