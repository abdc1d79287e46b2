"""One viewer's queue of already encoded packets, read by its track.

Each shared encoding (the camera's VP8 layers and H.264, its own H.264 passed
through, the microphone's Opus) hands every packet to one of these per viewer;
the viewer's track awaits :meth:`ViewerPackets.get`. What to do when a viewer
falls behind differs (video restarts at a keyframe, audio drops the oldest),
so subclasses decide what :meth:`put` keeps; the queue itself never grows past
what they allow.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import av


class ViewerPackets:
    def __init__(self) -> None:
        self._packets: collections.deque[av.Packet[Any]] = collections.deque()
        self._ready = asyncio.Event()
        self.closed = False
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._packets)

    async def get(self) -> av.Packet[Any] | None:
        """The next packet; None once the queue is closed."""
        while not self._packets:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()

    def take_all(self) -> list[av.Packet[Any]]:
        """Everything queued, in order, taken out at once."""
        packets = list(self._packets)
        self._packets.clear()
        self.delivered += len(packets)
        return packets

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def _append(self, packet: av.Packet[Any]) -> None:
        self._packets.append(packet)
        self._ready.set()

    def _clear(self) -> None:
        self._packets.clear()

    def _drop_oldest(self) -> None:
        self._packets.popleft()
