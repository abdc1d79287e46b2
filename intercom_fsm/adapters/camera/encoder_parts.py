"""What both shared encoders (:mod:`.encoding`, :mod:`.h264_encoding`) have
in common: their viewers and the task that encodes for them, what they take
from the hub, and where they encode.

Each encoder (one per VP8 layer, one for H.264) runs on a thread of its own
rather than on the loop's default executor: its state stays in one core's
caches from picture to picture, and a long encode never holds up the
executor work of the rest of the daemon. Measured with the MJPEG bench camera
at 640x480@15 and one viewer: the encoding costs 45 ms of CPU a second on its
own thread, 60 ms when the executor hands successive pictures to different
threads (as it does), and the whole daemon about 13 % less.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from intercom_fsm.adapters.camera.frames import Picture
from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.thread_names import name_native_thread
from intercom_fsm.packet_queue import ViewerPackets

T = TypeVar("T")
Queue = TypeVar("Queue", bound=ViewerPackets)


class Subscribers(Generic[Queue]):
    """The queues of one shared encoder's viewers, and the task that encodes
    the hub's new pictures for them: it starts with the first viewer and ends
    when the last one leaves (or at :meth:`close`).

    ``encode`` encodes one picture and hands the packets to the queues;
    ``release`` frees the encoder once the task ends. If ``encode`` fails,
    every queue is closed, so its viewer's track ends instead of waiting."""

    def __init__(
        self,
        hub: FrameHub,
        encode: Callable[[Picture], Awaitable[None]],
        release: Callable[[], None],
        *,
        name: str,
        log: logging.Logger,
    ) -> None:
        self.queues: set[Queue] = set()
        self.pictures = NewPictures(hub)
        self._hub = hub
        self._name = name
        self._log = log
        self._encode = encode
        self._release = release
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The encoding task, while it runs and after it ended (None before the first viewer)."""
        return self._task

    def add(self, queue: Queue) -> Queue:
        self.queues.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def remove(self, queue: Queue) -> None:
        queue.close()
        self.queues.discard(queue)
        if not self.queues:
            self._hub.wake()  # the task notices and ends

    async def close(self) -> None:
        for queue in list(self.queues):
            self.remove(queue)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while self.queues:
                picture = self.pictures.next()
                if picture is None:
                    await self._hub.wait_for_news()
                    continue
                await self._encode(picture)
        except Exception:
            self._log.exception("the %s stopped", self._name)
            for queue in list(self.queues):
                queue.close()
            raise
        finally:
            self._release()


class EncoderThread:
    """One thread that runs one encoder's work, in order. It starts with its
    first job and ends at :meth:`close` (a job in flight finishes first)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self, job: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, self._name, initializer=name_native_thread
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, job, *args)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class NewPictures:
    """The hub's pictures an encoder has not encoded yet, with their
    timestamps: the newest only (a slower encoder skips, never queues), and
    never, to start with, one left over from before a standby."""

    def __init__(self, hub: FrameHub) -> None:
        self._hub = hub
        self._last_sequence: int | None = None
        self._last_pts = -1

    def next(self) -> Picture | None:
        picture = self._hub.latest
        if picture is None or picture.sequence == self._last_sequence:
            return None
        if (
            self._last_sequence is None
            and self._hub.age(picture.captured_at) > self._hub.stale_after
        ):
            return None  # wait for a fresh one
        self._last_sequence = picture.sequence
        return picture

    def pts(self, picture: Picture) -> int:
        """``picture``'s timestamp, always after the previous one's."""
        pts = max(self._hub.pts(picture.captured_at), self._last_pts + 1)
        self._last_pts = pts
        return pts
