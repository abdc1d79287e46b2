"""One measured run of a client: a fresh MJPEG source, the client, viewers.

A run starts the source, starts the client and waits for its signaling
socket, connects the viewers (each offers when the welcome says the device is
online), waits until every viewer has a frame, lets the stream settle, then
measures a window: the client's CPU seconds and the frames every viewer
decoded in it. Peak memory is sampled over the whole run. The lag probe's
file, when the client has one, is cut to the same window.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.clients import BenchError, Client, ProcessSampler
from bench.h264_offer import HIGH_3_1
from bench.marker_jitter import MarkerJitterBuffer
from bench.mjpeg_source import MjpegSourceProcess
from bench.rtsp_source import RtspSourceProcess
from bench.stamp_viewer import StampViewer
from intercom_fsm.sandbox.process import SandboxProcess

FIRST_FRAME_TIMEOUT = 20.0
SETTLE_SECONDS = 3.0
ISOLATED_DROP_SPACING = 32.0
"""Longer than the daemon's backoff reset period (30 s of a working link)."""


@dataclass(frozen=True)
class Case:
    width: int
    height: int
    fps: float
    viewers: int
    camera: str = "mjpeg"
    """``mjpeg``: the MJPEG bench camera over HTTP; ``rtsp``: the same pictures
    as H.264 High (2 s GOP) from GStreamer's RTSP server, watched by viewers
    that take High profile."""

    @property
    def label(self) -> str:
        prefix = "H.264 RTSP " if self.camera == "rtsp" else ""
        return f"{prefix}{self.width}x{self.height}@{self.fps:g} x{self.viewers}"

    def source(self) -> MjpegSourceProcess | RtspSourceProcess:
        if self.camera == "rtsp":
            return RtspSourceProcess(self.width, self.height, self.fps)
        return MjpegSourceProcess(self.width, self.height, self.fps)

    @property
    def h264_profile(self) -> str | None:
        return HIGH_3_1 if self.camera == "rtsp" else None


@dataclass
class RunResult:
    client: str
    case: Case
    seconds: float
    loaded: bool = False
    frames: int = 0
    """Frames decoded by all viewers in the window."""
    distinct_frames_per_viewer: list[int] = field(default_factory=list)
    latencies_ms: list[int] = field(default_factory=list)
    latency_timeline: list[tuple[float, int]] = field(default_factory=list)
    """(seconds into the window, latency) for every stamped frame of viewer 0."""
    unreadable_stamps: int = 0
    first_frame_s: list[float] = field(default_factory=list)
    """Offer to first decoded frame, per viewer that got one."""
    viewers_without_frames: int = 0
    cpu_seconds: float = 0.0
    payload_bytes: int = 0
    """Video payload the viewers received in the window, all viewers together."""
    peak_rss_bytes: int = 0
    lag_s: list[float] = field(default_factory=list)
    joiner_first_frame_s: float | None = None
    """Offer to first frame of a viewer joining the running stream (RTSP cases)."""
    failure: str | None = None

    @property
    def achieved_fps_ratio(self) -> float:
        if not self.distinct_frames_per_viewer or self.seconds <= 0:
            return 0.0
        per_viewer = [n / self.seconds for n in self.distinct_frames_per_viewer]
        return min(per_viewer) / self.case.fps

    @property
    def kbit_per_viewer(self) -> float | None:
        if not self.distinct_frames_per_viewer or self.seconds <= 0:
            return None
        return self.payload_bytes * 8 / 1000 / self.seconds / len(self.distinct_frames_per_viewer)

    @property
    def cpu_per_frame_ms(self) -> float | None:
        return 1000 * self.cpu_seconds / self.frames if self.frames else None


def floor_key(case: Case) -> tuple[str, int]:
    """Which encoder floor a case is measured against."""
    size = f"{case.width}x{case.height}"
    return (f"rtsp {size}" if case.camera == "rtsp" else size, case.viewers)


def percentile(values: list[float] | list[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return float(ordered[index])


def read_lag_window(lag_file: Path, start_wall: float, end_wall: float) -> list[float]:
    lags: list[float] = []
    if not lag_file.exists():
        return lags
    for line in lag_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and start_wall <= float(parts[0]) < end_wall:
            lags.append(float(parts[1]))
    return lags


class WindowEdges(Protocol):
    """Called with the client's pid as the measured window opens and closes
    (``bench/threads.py`` reads the client's threads there)."""

    def opened(self, pid: int) -> None: ...

    def closed(self, pid: int) -> None: ...


class BusyLoad:
    """Processes that each keep one core busy with a pure-Python loop."""

    def __init__(self, processes: int) -> None:
        self._count = processes
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoad:
        for _ in range(self._count):
            self._processes.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self._processes:
            process.kill()
            process.wait(timeout=10)


async def run_case(
    sandbox: SandboxProcess,
    client: Client,
    case: Case,
    seconds: float,
    *,
    lag_file: Path | None = None,
    busy_processes: int = 0,
    edges: WindowEdges | None = None,
) -> RunResult:
    result = RunResult(client.name, case, seconds, loaded=busy_processes > 0)
    source = case.source()
    viewers: list[StampViewer] = []
    sampler: ProcessSampler | None = None
    try:
        await asyncio.to_thread(source.start)
        client.start(source.url, case.width, case.height, case.fps)
        device_code = await asyncio.to_thread(client.wait_ready)
        sampler = ProcessSampler(client.pid).start()
        for _ in range(case.viewers):
            viewers.append(
                await StampViewer(sandbox.info, device_code, h264_profile=case.h264_profile).start()
            )
        arrived = await asyncio.gather(
            *(v.wait_for_frame(0.0, FIRST_FRAME_TIMEOUT) for v in viewers)
        )
        result.viewers_without_frames = sum(1 for a in arrived if a is None)
        if result.viewers_without_frames == len(viewers):
            result.failure = "no viewer received a frame"
            return result
        with BusyLoad(busy_processes):
            await asyncio.sleep(SETTLE_SECONDS)
            await _measure(result, client, viewers, sampler, seconds, lag_file, edges)
        if case.camera == "rtsp":
            joiner = await StampViewer(
                sandbox.info, device_code, h264_profile=case.h264_profile
            ).start()
            viewers.append(joiner)
            await joiner.wait_for_frame(0.0, FIRST_FRAME_TIMEOUT)
            offer = joiner.offers[0] if joiner.offers else None
            if offer is not None and offer.first_frame is not None:
                result.joiner_first_frame_s = offer.first_frame - offer.sent
    except BenchError as error:
        result.failure = str(error)
    finally:
        for viewer in viewers:
            await viewer.close()
        if sampler is not None:
            sampler.stop()
            result.peak_rss_bytes = sampler.peak_rss
        client.stop()
        source.stop()
    return result


async def _measure(
    result: RunResult,
    client: Client,
    viewers: list[StampViewer],
    sampler: ProcessSampler,
    seconds: float,
    lag_file: Path | None,
    edges: WindowEdges | None,
) -> None:
    bytes_before = MarkerJitterBuffer.payload_bytes
    if edges is not None:
        edges.opened(client.pid)
    start, start_wall, cpu_before = time.monotonic(), time.time(), sampler.cpu_seconds()
    await asyncio.sleep(seconds)
    end, end_wall, cpu_after = time.monotonic(), time.time(), sampler.cpu_seconds()
    if edges is not None:
        edges.closed(client.pid)
    result.payload_bytes = MarkerJitterBuffer.payload_bytes - bytes_before
    result.seconds = end - start
    result.cpu_seconds = cpu_after - cpu_before
    for index, viewer in enumerate(viewers):
        frames = viewer.between(start, end)
        result.frames += len(frames)
        result.distinct_frames_per_viewer.append(
            len({f.sequence for f in frames if f.sequence is not None})
        )
        result.unreadable_stamps += sum(1 for f in frames if f.sequence is None)
        result.latencies_ms += [f.latency_ms for f in frames if f.latency_ms is not None]
        if index == 0:
            result.latency_timeline = [
                (f.arrived - start, f.latency_ms) for f in frames if f.latency_ms is not None
            ]
        offer = viewer.offers[0] if viewer.offers else None
        if offer is not None and offer.first_frame is not None:
            result.first_frame_s.append(offer.first_frame - offer.sent)
    if lag_file is not None:
        result.lag_s = read_lag_window(lag_file, start_wall, end_wall)


@dataclass
class RecoveryResult:
    client: str
    socket_drop_s: list[float | None] = field(default_factory=list)
    """Server-side socket close to the viewer's first frame on its new offer."""
    cold_start_s: list[float | None] = field(default_factory=list)
    """Client process start to a waiting viewer's first frame."""


async def run_recovery(
    sandbox: SandboxProcess, client: Client, case: Case, drops: int, starts: int, within: float
) -> RecoveryResult:
    result = RecoveryResult(client.name)
    source = MjpegSourceProcess(case.width, case.height, case.fps)
    try:
        await asyncio.to_thread(source.start)
        for _ in range(starts):
            result.cold_start_s.append(await _cold_start(sandbox, client, source.url, case, within))
        if drops:
            client.start(source.url, case.width, case.height, case.fps)
            device_code = await asyncio.to_thread(client.wait_ready)
            viewer = await StampViewer(sandbox.info, device_code).start()
            try:
                if await viewer.wait_for_frame(0.0, FIRST_FRAME_TIMEOUT) is None:
                    raise BenchError(f"{client.name}: no first frame before the drops")
                for index in range(drops):
                    # Each drop isolated, as the target means it: the daemon's
                    # backoff grows for a link that keeps failing and starts
                    # from its base again once the link has held for 30 s.
                    await asyncio.sleep(2.0 if index == 0 else ISOLATED_DROP_SPACING)
                    offers = len(viewer.offers)
                    dropped = time.monotonic()
                    await asyncio.to_thread(sandbox.control.close_device_socket, device_code, 1011)
                    result.socket_drop_s.append(
                        await _new_offer_frame(viewer, offers, dropped, within)
                    )
            finally:
                await viewer.close()
                client.stop()
    finally:
        source.stop()
    return result


async def _new_offer_frame(
    viewer: StampViewer, offers_before: int, since: float, within: float
) -> float | None:
    deadline = since + within
    while time.monotonic() < deadline:
        for index in range(offers_before, len(viewer.offers)):
            first = viewer.first_frame_of_offer(index)
            if first is not None:
                return first - since
        await asyncio.sleep(0.01)
    return None


async def _cold_start(
    sandbox: SandboxProcess, client: Client, url: str, case: Case, within: float
) -> float | None:
    """Process start to first frame. A client with stored tokens has a known
    device code: its viewer is already waiting and offers when the device comes
    online. The naive client signs in anew, so its viewer joins once the new
    code is known."""
    viewer: StampViewer | None = None
    known = client.known_device_code()
    if known is not None:
        viewer = await StampViewer(sandbox.info, known).start()
    started = time.monotonic()
    client.start(url, case.width, case.height, case.fps)
    try:
        device_code = await asyncio.to_thread(client.wait_ready)
        if viewer is None:
            viewer = await StampViewer(sandbox.info, device_code).start()
        arrived = await viewer.wait_for_frame(started, within)
        return None if arrived is None else arrived - started
    except BenchError:
        return None
    finally:
        if viewer is not None:
            await viewer.close()
        client.stop()


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None
