"""What both shared encoders (:mod:`.encoding`, :mod:`.h264_encoding`) take
from the hub and where they encode.

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
from collections.abc import Callable
from typing import TypeVar

from intercom_fsm.adapters.camera.frames import Picture
from intercom_fsm.adapters.camera.hub import FrameHub

T = TypeVar("T")


class EncoderThread:
    """One thread that runs one encoder's work, in order. It starts with its
    first job and ends at :meth:`close` (a job in flight finishes first)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self, job: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, self._name)
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
