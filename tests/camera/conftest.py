"""Helpers for the camera adapter's tests: a recorder for the events the
camera reports, an MJPEG-over-HTTP camera on 127.0.0.1, and a probe of the
event loop's lag."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable

import attrs
import av
import cv2
import numpy as np
import pytest_asyncio
from aiohttp import web

from intercom_fsm.adapters.camera import Camera
from intercom_fsm.adapters.camera.hub import ViewerTrack
from intercom_fsm.events import Event

BRIGHT_LUMA = 150.0
"""Luma above which a frame is a served picture (the offline frame is dark)."""


def luma(frame: av.VideoFrame) -> float:
    """Mean brightness of a yuv420p frame's Y plane."""
    return float(frame.to_ndarray()[: frame.height].mean())


@attrs.define
class EventRecorder:
    """The ``on_event`` callback: keeps each event with the thread it came on."""

    events: list[Event] = attrs.field(factory=list)
    threads: set[int] = attrs.field(factory=set)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.threads.add(threading.get_ident())

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]


async def eventually(
    check: Callable[[], bool], within: float, what: str, every: float = 0.01
) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(every)


def viewer(camera: Camera) -> ViewerTrack:
    """A viewer's track, typed as what it is."""
    track = camera.track_for_viewer()
    assert isinstance(track, ViewerTrack)
    return track


async def next_frame(track: ViewerTrack) -> av.VideoFrame:
    """The track's next picture. A track that shares no encoder sends frames,
    never packets: anything else is a failure."""
    frame = await track.recv()
    assert isinstance(frame, av.VideoFrame), frame
    return frame


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MjpegCamera:
    """An IP camera serving multipart/x-mixed-replace JPEGs (bright pictures
    with a moving bar) on a fixed port; it can be stopped and started again."""

    BOUNDARY = "frame"

    def __init__(
        self,
        fps: float = 15.0,
        width: int = 320,
        height: int = 240,
        stall_after: int | None = None,
    ) -> None:
        """With ``stall_after`` the camera keeps each connection open but sends
        nothing more after that many pictures."""
        self.port = free_port()
        self._stall_after = stall_after
        self._interval = 1.0 / fps
        self._jpegs = [_bright_jpeg(width, height, index) for index in range(8)]
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.connections = 0

    def url(self, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}/stream.mjpg?token=t0ps3cret"

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/stream.mjpg", self._stream)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._runner = runner

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        response = web.StreamResponse(
            headers={"Content-Type": f"multipart/x-mixed-replace; boundary={self.BOUNDARY}"}
        )
        await response.prepare(request)
        index = 0
        while not self._stopping.is_set():
            if self._stall_after is not None and index >= self._stall_after:
                await self._stopping.wait()
                break
            jpeg = self._jpegs[index % len(self._jpegs)]
            index += 1
            head = (
                f"--{self.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n"
            ).encode()
            try:
                await response.write(head + jpeg + b"\r\n")
            except ConnectionError:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
        return response


def _bright_jpeg(width: int, height: int, index: int) -> bytes:
    image = np.full((height, width, 3), 230, np.uint8)
    left = index * width // 8
    image[:, left : left + width // 16] = 0
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    return jpeg.tobytes()


@pytest_asyncio.fixture
async def mjpeg_camera() -> AsyncIterator[MjpegCamera]:
    camera = MjpegCamera()
    await camera.start()
    try:
        yield camera
    finally:
        await camera.stop()


class LoopLagProbe:
    """Measures how late the event loop wakes a task that sleeps ``period``."""

    def __init__(self, period: float = 0.002) -> None:
        self._period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self._period)
            self.lags.append(time.perf_counter() - start - self._period)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def percentile(self, share: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def median(self) -> float:
        return statistics.median(self.lags)
