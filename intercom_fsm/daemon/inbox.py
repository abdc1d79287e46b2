"""The runtime's single event queue: every adapter posts here, on the loop."""

from __future__ import annotations

import asyncio

from intercom_fsm.events import Event


class Inbox:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self.posted = 0

    def post(self, event: Event) -> None:
        """Call on the event loop's thread (threads use ``call_soon_threadsafe``)."""
        self.posted += 1
        self._queue.put_nowait(event)

    async def next(self) -> Event:
        return await self._queue.get()

    def pending(self) -> int:
        return self._queue.qsize()
