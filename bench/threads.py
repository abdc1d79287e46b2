"""Where the daemon's CPU goes, thread by thread, for one case held running.

    python bench/threads.py                          # H.264 RTSP 640x480@15, one viewer
    python bench/threads.py --camera mjpeg --viewers 3 --window 20
    python bench/threads.py --set VIDEO_RTSP_READER=ffmpeg   # a daemon setting

Runs the case as ``bench/pipeline.py`` does (:func:`bench.runs.run_case`: the
sandbox, the daemon, a bench camera and its viewers, the window once every
viewer has a frame and the stream has settled) and reads each of the
daemon's threads from ``/proc/<pid>/task`` as the window opens and closes:
its CPU (the scheduler's own nanoseconds, ``schedstat``) and its voluntary
context switches (each one a sleep, so a wake-up). The daemon names its
threads (``camera-capture``, ``vp8-high_0``, ``h264_0``, ``microphone``...);
the main thread runs the event loop; threads it did not start itself
(asyncio's executor, for one) keep the process's name. Threads of one name
are added up, so an encoder closed and opened again inside the window counts
as one. A thread that ended inside the window cannot be read any more: the
process's own figure (``/proc/<pid>/stat``, in clock ticks, ended threads
included) is printed beside the sum.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the root
    sys.path.insert(0, str(ROOT))

from bench.clients import DaemonClient  # noqa: E402
from bench.runs import Case, run_case  # noqa: E402
from intercom_fsm.sandbox.process import SandboxProcess  # noqa: E402


@dataclass(frozen=True)
class ThreadSample:
    name: str
    cpu_ns: int
    wakeups: int


MAIN_THREAD = "main (event loop)"


def read_threads(pid: int) -> dict[int, ThreadSample]:
    """Every live thread of ``pid`` by thread id (one that ends while it is
    read is left out); the main thread, which runs the event loop, as
    :data:`MAIN_THREAD`."""
    samples: dict[int, ThreadSample] = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = MAIN_THREAD if entry.name == str(pid) else (entry / "comm").read_text().strip()
            cpu_ns = int((entry / "schedstat").read_text().split()[0])
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        wakeups = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        samples[int(entry.name)] = ThreadSample(name, cpu_ns, wakeups)
    return samples


def process_cpu_seconds(pid: int) -> float:
    """User and system time of the whole process, its ended threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadUse:
    name: str
    threads: int
    cpu_ms_per_s: float
    wakeups_per_s: float


def by_name(
    before: dict[int, ThreadSample], after: dict[int, ThreadSample], seconds: float
) -> list[ThreadUse]:
    """Each name's CPU and wake-ups in the window, the busiest first. A
    thread born inside the window counts from zero."""
    cpu: dict[str, int] = defaultdict(int)
    wakeups: dict[str, int] = defaultdict(int)
    threads: dict[str, int] = defaultdict(int)
    for tid, sample in after.items():
        start = before.get(tid, ThreadSample(sample.name, 0, 0))
        cpu[sample.name] += sample.cpu_ns - start.cpu_ns
        wakeups[sample.name] += sample.wakeups - start.wakeups
        threads[sample.name] += 1
    uses = [
        ThreadUse(name, threads[name], cpu[name] / 1e6 / seconds, wakeups[name] / seconds)
        for name in cpu
    ]
    return sorted(uses, key=lambda use: -use.cpu_ms_per_s)


def table(uses: list[ThreadUse], process_ms_per_s: float, frames_per_s: float) -> str:
    def per_frame(ms_per_s: float) -> str:
        return f"{ms_per_s / frames_per_s:.2f}" if frames_per_s else "—"

    lines = [
        "| thread | threads | CPU ms/s | ms per frame | wake-ups/s |",
        "|---|---|---|---|---|",
    ]
    for use in uses:
        if use.cpu_ms_per_s < 0.05:
            continue
        lines.append(
            f"| {use.name} | {use.threads} | {use.cpu_ms_per_s:.1f} | "
            f"{per_frame(use.cpu_ms_per_s)} | {use.wakeups_per_s:.0f} |"
        )
    live = sum(use.cpu_ms_per_s for use in uses)
    lines.append(f"| all live threads | | {live:.1f} | {per_frame(live)} | |")
    lines.append(
        f"| the process (ticks; ended threads too) | | {process_ms_per_s:.1f} | "
        f"{per_frame(process_ms_per_s)} | |"
    )
    return "\n".join(lines)


class ThreadWindow:
    """The client's threads and process CPU read at the window's edges."""

    def __init__(self) -> None:
        self.before: dict[int, ThreadSample] = {}
        self.after: dict[int, ThreadSample] = {}
        self.process_seconds = 0.0

    def opened(self, pid: int) -> None:
        self.before = read_threads(pid)
        self.process_seconds = -process_cpu_seconds(pid)

    def closed(self, pid: int) -> None:
        self.after = read_threads(pid)
        self.process_seconds += process_cpu_seconds(pid)


async def measure(
    case: Case, window: float, workdir: Path, settings: dict[str, str] | None = None
) -> str:
    """``case`` run as ``bench/pipeline.py`` runs it, read thread by thread;
    ``settings`` go to the daemon's environment."""
    edges = ThreadWindow()
    with SandboxProcess(auto_approve=True, device_interval=1) as sandbox:
        client = DaemonClient(sandbox.info, workdir, settings=settings)
        await asyncio.to_thread(client.sign_in)
        result = await run_case(sandbox, client, case, window, edges=edges)
    if result.failure is not None or not edges.after:
        raise SystemExit(f"{case.label}: {result.failure or 'the window was not measured'}")
    frames_per_s = result.frames / result.seconds
    uses = by_name(edges.before, edges.after, result.seconds)
    header = (
        f"{case.label}: {result.seconds:.1f} s window, {frames_per_s:.1f} frames/s "
        "decoded by the viewers (CPU per frame is over those)"
    )
    process_ms = edges.process_seconds * 1000 / result.seconds
    return header + "\n\n" + table(uses, process_ms, frames_per_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camera", choices=("rtsp", "mjpeg"), default="rtsp")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a daemon setting"
    )
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    width, height = (int(part) for part in args.size.split("x"))
    case = Case(width, height, args.fps, args.viewers, args.camera)
    workdir = Path(tempfile.mkdtemp(prefix="intercom-threads-"))
    try:
        print(asyncio.run(measure(case, args.window, workdir, settings)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
