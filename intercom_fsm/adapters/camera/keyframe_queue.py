"""One viewer's share of a shared encoded stream: in order, from a keyframe on,
never a backlog.

A delta picture needs the pictures before it, so a viewer of a shared stream
must start at a keyframe and may not skip packets. A viewer that falls
:data:`QUEUE_LIMIT` packets behind (a slow link, a busy loop) drops its queue
and waits for the next keyframe: it then gets the newest pictures.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

import av

QUEUE_LIMIT = 8


class KeyframeQueue:
    def __init__(self, on_reset: Callable[[], None] | None = None) -> None:
        """``on_reset`` is called when the queue had to start again (an encoder
        is then asked for a keyframe)."""
        self._on_reset = on_reset
        self._packets: collections.deque[av.Packet[Any]] = collections.deque()
        self._ready = asyncio.Event()
        self.waiting_for_keyframe = True
        self.closed = False
        self.delivered = 0
        self.resets = 0

    def put(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self.waiting_for_keyframe:
            if not keyframe:
                return
            self.waiting_for_keyframe = False
        if len(self._packets) >= QUEUE_LIMIT:
            self.restart()
            self.resets += 1
            if self._on_reset is not None:
                self._on_reset()
            return
        self._packets.append(packet)
        self._ready.set()

    def restart(self) -> None:
        """Drop what is queued and wait for the next keyframe."""
        self._packets.clear()
        self.waiting_for_keyframe = True

    async def get(self) -> av.Packet[Any] | None:
        """The next packet; None once the queue is closed."""
        while not self._packets:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()

    def close(self) -> None:
        self.closed = True
        self._ready.set()
