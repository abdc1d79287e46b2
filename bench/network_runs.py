"""One run of the network bench: a client and its viewers on shaped links.

A run builds a fresh lab (``tests/netlab/device_lab.py``): the device
namespace with the time-stamping camera and the client under test (the daemon
or the naive client), one namespace per viewer with its own veth link to the
device, shaped both ways with ``tbf`` (a 500 ms queue) and random loss both
ways with nftables, and the sandbox backend in the root namespace. Every
viewer (``tests/netlab/viewer_process.py``) reads the capture time stamped in
each frame it decodes. After a settling time (new viewers of the daemon start
on its low layer and probe up), a window is measured; in the outage case the
device's links (media and signaling) are cut for a while in its middle.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import BenchError, NaiveClient
from bench.runs import percentile
from tests.netlab.device_lab import DeviceLab
from tests.netlab.viewer_process import ViewerProcess

SETTLE_SECONDS = 12.0
FIRST_FRAME_TIMEOUT = 40.0
FRESH_MS = 400
"""A frame this young or younger counts as fresh after an outage."""


@dataclass(frozen=True)
class LinkShape:
    label: str
    rate_kbit: float | None
    loss_percent: float


SLOW = LinkShape("300 kbit/s, 3 % loss", 300, 3.0)
MEDIUM = LinkShape("1 Mbit/s, 1 % loss", 1000, 1.0)
CLEAN = LinkShape("unconstrained", None, 0.0)


@dataclass(frozen=True)
class NetCase:
    key: str
    label: str
    viewers: tuple[tuple[str, LinkShape], ...]
    seconds: float
    outage: float = 0.0
    """Seconds of total outage in the middle of the window (0: none)."""


@dataclass
class ViewerFigures:
    name: str
    link: LinkShape
    fps_ratio: float = 0.0
    latencies_ms: list[int] = field(default_factory=list)
    latency_timeline: list[tuple[float, int]] = field(default_factory=list)
    longest_freeze_s: float | None = None
    kbit_per_second: float | None = None
    keyframes: int = 0
    back_to_fresh_s: float | None = None
    unreadable: int = 0

    def latency(self, fraction: float) -> float | None:
        return percentile(self.latencies_ms, fraction)

    @property
    def growth_ms(self) -> float | None:
        """p95 latency of the window's last third minus that of its first third."""
        if len(self.latency_timeline) < 30:
            return None
        span = self.latency_timeline[-1][0]
        early = percentile([v for t, v in self.latency_timeline if t < span / 3], 0.95)
        late = percentile([v for t, v in self.latency_timeline if t >= 2 * span / 3], 0.95)
        return None if early is None or late is None else late - early


@dataclass
class NetRun:
    client: str
    case: NetCase
    viewers: list[ViewerFigures] = field(default_factory=list)
    failure: str | None = None
    outage_note: str = ""

    def viewer(self, name: str) -> ViewerFigures | None:
        return next((v for v in self.viewers if v.name == name), None)


def run_network_case(
    client: str, case: NetCase, workdir: Path, width: int, height: int, fps: float
) -> NetRun:
    result = NetRun(client, case)
    names = [name for name, _ in case.viewers]
    try:
        with DeviceLab(workdir, names, width=width, height=height, fps=fps) as door:
            for name, shape in case.viewers:
                _shape(door, name, shape)
            code = _start_client(door, client, workdir)
            viewers = {name: door.watch(name, code) for name in names}
            for viewer in viewers.values():
                viewer.wait_for_frames(1, FIRST_FRAME_TIMEOUT)
            time.sleep(SETTLE_SECONDS)
            start = time.monotonic()
            restored = _outage(door, case) if case.outage else None
            time.sleep(max(0.0, start + case.seconds - time.monotonic()))
            end = time.monotonic()
            for (name, shape), viewer in zip(case.viewers, viewers.values(), strict=True):
                result.viewers.append(_figures(name, shape, viewer, start, end, fps, restored))
            if case.outage and door.daemon is not None:
                result.outage_note = _calls_kept(door.daemon.text())
    except (BenchError, AssertionError, RuntimeError, TimeoutError) as error:
        result.failure = " ".join(str(error).split())[:300]
    return result


def _shape(door: DeviceLab, name: str, shape: LinkShape) -> None:
    link = door.link(name)
    for towards in (door.viewer_namespace(name), door.device_namespace):
        if shape.rate_kbit is not None:
            link.shape(shape.rate_kbit, towards=towards)
        if shape.loss_percent:
            link.set_loss(shape.loss_percent, towards=towards)


def _start_client(door: DeviceLab, client: str, workdir: Path) -> str:
    """Start the client in the device namespace; its device code once online."""
    assert door.sandbox is not None and door.camera is not None
    if client == "intercom-fsm":
        # The daemon's own backoff: recovery is measured as shipped.
        return door.start_daemon(BACKOFF_BASE_SECONDS="1", BACKOFF_CAP_SECONDS="60")
    naive = NaiveClient(
        door.sandbox.info,
        workdir,
        wrap=door.device_namespace.command,
        environ=door.client_environment(),
    )
    door.on_close(naive.stop)
    naive.start(door.camera.url, door.width, door.height, door.fps)
    return naive.wait_ready()


def _outage(door: DeviceLab, case: NetCase) -> float:
    """Cut every link of the device (media and signaling) in the window's
    middle for ``case.outage`` seconds; when it came back."""
    time.sleep(max(0.0, (case.seconds - case.outage) / 3))
    links = [door.link(name) for name, _ in case.viewers] + [door.uplink()]
    for link in links:
        link.cut()
    time.sleep(case.outage)
    for link in links:
        link.restore()
    return time.monotonic()


def _figures(
    name: str,
    shape: LinkShape,
    viewer: ViewerProcess,
    start: float,
    end: float,
    fps: float,
    restored: float | None,
) -> ViewerFigures:
    frames = viewer.frames()
    window = [f for f in frames if start <= f["t"] < end]
    figures = ViewerFigures(name, shape)
    distinct = {f["seq"] for f in window if f["seq"] is not None}
    figures.fps_ratio = len(distinct) / (end - start) / fps
    figures.latencies_ms = [f["latency_ms"] for f in window if f["latency_ms"] is not None]
    figures.latency_timeline = [
        (f["t"] - start, f["latency_ms"]) for f in window if f["latency_ms"] is not None
    ]
    figures.unreadable = sum(1 for f in window if f["seq"] is None)
    arrivals = [f["t"] for f in frames if f["t"] < end]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    figures.longest_freeze_s = max(gaps, default=0.0) if arrivals else None
    figures.kbit_per_second = viewer.payload_bytes_between(start, end) * 8 / 1000 / (end - start)
    figures.keyframes = _keyframes_between(viewer, start, end)
    if restored is not None:
        figures.back_to_fresh_s = _back_to_fresh(frames, restored)
    return figures


def _keyframes_between(viewer: ViewerProcess, start: float, end: float) -> int:
    reports = [(r["t"], r["keyframes"]) for r in viewer.of("bytes")]
    before = [k for t, k in reports if t <= start]
    upto = [k for t, k in reports if t <= end]
    return int((upto[-1] if upto else 0) - (before[-1] if before else 0))


def _back_to_fresh(frames: list[dict[str, Any]], restored: float) -> float | None:
    """Seconds from the end of the outage to the first frame both captured
    after it and at most :data:`FRESH_MS` old."""
    for frame in frames:
        latency = frame["latency_ms"]
        if frame["t"] < restored or latency is None:
            continue
        captured = frame["t"] - latency / 1000
        if captured >= restored and latency <= FRESH_MS:
            return float(frame["t"] - restored)
    return None


def _calls_kept(log: str) -> str:
    """What the daemon's log says the outage did to the socket and the calls."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    changes = [r for r in records if "from" in r and r.get("from") != r.get("to")]
    drops = sum(1 for r in changes if r.get("event") == "SocketClosed" and not r.get("session"))
    held = sum(1 for r in changes if r.get("session") and r.get("to") == "Held")
    ended = sum(1 for r in changes if r.get("session") and r.get("to") == "Closed")
    return f"the socket dropped {drops}×, calls held {held}×, calls ended {ended}×"


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
