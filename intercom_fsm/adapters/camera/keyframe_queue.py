"""One viewer's share of a shared encoded stream: in order, from a keyframe on,
never a backlog.

A delta picture needs the pictures before it, so a viewer of a shared stream
must start at a keyframe and may not skip packets. A viewer that falls
:data:`QUEUE_LIMIT` packets behind (a slow link, a busy loop) drops its queue
and waits for the next keyframe: it then gets the newest pictures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import av

from intercom_fsm.packet_queue import ViewerPackets

QUEUE_LIMIT = 8


class KeyframeQueue(ViewerPackets):
    def __init__(self, on_reset: Callable[[], None] | None = None) -> None:
        """``on_reset`` is called when the queue had to start again (an encoder
        is then asked for a keyframe)."""
        super().__init__()
        self._on_reset = on_reset
        self.waiting_for_keyframe = True
        self.resets = 0

    def put(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self.waiting_for_keyframe:
            if not keyframe:
                return
            self.waiting_for_keyframe = False
        if len(self) >= QUEUE_LIMIT:
            self.restart()
            self.resets += 1
            if self._on_reset is not None:
                self._on_reset()
            return
        self._append(packet)

    def restart(self) -> None:
        """Drop what is queued and wait for the next keyframe."""
        self._clear()
        self.waiting_for_keyframe = True
