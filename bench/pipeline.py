"""The whole pipeline, camera to viewer, measured against the naive client and
the encoder's own cost, in one run.

    python bench/pipeline.py --quick     # about 1.5 minutes: the key case only
    python bench/pipeline.py --media     # about 6 minutes: the H.264 camera's cases
    python bench/pipeline.py             # everything; writes bench/results/

A synthetic IP camera (``bench/mjpeg_source.py``) stamps its capture time
into every picture and serves MJPEG over HTTP on loopback. The client under
test (the daemon, or ``bench/naive_client.py``) streams it through the
sandbox backend to aiortc viewers (``bench/stamp_viewer.py``) that read the
stamp back from each decoded frame. Figures: fps achieved, glass-to-glass
latency, offer to first frame, client CPU per streamed frame and peak RSS
(psutil), the encoder floor (``bench/floor.py``), recovery after a socket
drop and after a restart, event-loop lag (``bench/loop_probe.py``), the
machine's dispatch rate (``bench/fsm.py``) and ``intercom-fsm --help``.

The H.264 camera (``bench/rtsp_source.py``) is the same time-stamped picture
re-encoded by GStreamer's RTSP server to H.264 High with a 2 s GOP, watched
by viewers that take High profile: the daemon passes its stream through, the
naive client decodes and encodes it for each viewer. Its floor is one H.264
decode and a VP8 encode per viewer; beside it, the wake-up floor
(``bench/wakeup_floor.py``) is what a bare event loop spends waking for the
camera's bytes and sending them on; a viewer joining the running stream gives
the joiner's first frame. The targets are in ``bench/targets.py`` and
``bench/media.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the root
    sys.path.insert(0, str(ROOT))

from bench import fsm, marker_jitter, report  # noqa: E402
from bench.clients import DaemonClient, NaiveClient  # noqa: E402
from bench.floor import (  # noqa: E402
    H264Sample,
    camera_latency_ms,
    encoder_floor,
    fetch_h264_packets,
    fetch_jpegs,
    h264_encoder_floor,
)
from bench.media import (  # noqa: E402
    H264_MATRIX,
    MJPEG_ONE,
    camera_latency_table,
    media_targets,
    wakeup_floor_ms,
)
from bench.mjpeg_source import MjpegSourceProcess  # noqa: E402
from bench.report import Target  # noqa: E402
from bench.rtsp_source import GOP_SECONDS, RtspSourceProcess  # noqa: E402
from bench.runs import (  # noqa: E402
    Case,
    RecoveryResult,
    RunResult,
    floor_key,
    run_case,
    run_recovery,
)
from bench.targets import KEY_CASE, build_targets  # noqa: E402
from intercom_fsm.sandbox.process import SandboxProcess  # noqa: E402

MATRIX = (
    Case(320, 240, 5, 1),
    Case(320, 240, 5, 3),
    Case(640, 480, 15, 1),
    KEY_CASE,
    Case(1280, 720, 30, 1),
    Case(1280, 720, 30, 3),
)
RESULTS = ROOT / "bench" / "results"


def help_seconds(repeats: int = 7) -> float:
    """Median wall time of ``intercom-fsm --help``, interpreter start included."""
    script = Path(sys.executable).with_name("intercom-fsm")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "intercom_fsm"]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([*command, "--help"], capture_output=True, check=True, timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def dispatch_rates(events: int) -> tuple[float, float]:
    sequence = fsm.record_sequence(events)
    ours = statistics.median(fsm.replay(sequence) for _ in range(5))
    floor = statistics.median(fsm.trivial_floor(events) for _ in range(5))
    return ours, floor


Sample = list[bytes] | H264Sample
"""What a floor encodes: the MJPEG camera's pictures or the H.264 camera's packets."""


def floor_samples(
    cases: tuple[Case, ...], camera_latency: dict[str, list[int]]
) -> dict[tuple[str, int, int], Sample]:
    """Each camera's pictures (or packets) for the floors, by camera and size;
    the H.264 camera's own latency goes to ``camera_latency`` by size."""
    samples: dict[tuple[str, int, int], Sample] = {}
    for camera, width, height, fps in dict.fromkeys(
        (c.camera, c.width, c.height, c.fps) for c in cases
    ):
        if camera == "rtsp":
            with RtspSourceProcess(width, height, fps) as rtsp:
                samples[camera, width, height] = fetch_h264_packets(
                    rtsp.url, int(fps * 2 * GOP_SECONDS)
                )
                camera_latency[f"{width}x{height}@{fps:g}"] = camera_latency_ms(rtsp.url)
        else:
            with MjpegSourceProcess(width, height, fps) as source:
                samples[camera, width, height] = fetch_jpegs(source.url, max(10, int(fps * 2)))
    return samples


def floor_ms(case: Case, sample: Sample) -> float:
    """``case``'s encoder floor in ms per streamed frame."""
    if isinstance(sample, H264Sample):
        seconds = h264_encoder_floor(sample, case.width, case.height, case.fps, case.viewers)
    else:
        seconds = encoder_floor(sample, case.width, case.height, case.fps, case.viewers)
    return 1000 * seconds


def say(text: str) -> None:
    print(text, flush=True)


async def measure(args: argparse.Namespace, workdir: Path) -> str:
    quick: bool = args.quick or args.media
    if args.media:
        cases: tuple[Case, ...] = (MJPEG_ONE, *H264_MATRIX)
    else:
        cases = (KEY_CASE,) if args.quick else (*MATRIX, *H264_MATRIX)
    window = 10.0 if args.quick else args.window
    say("timing intercom-fsm --help, the machine's dispatch rate, the encoder floor ...")
    help_s = help_seconds()
    ours_rate, floor_rate = dispatch_rates(20_000 if quick else 100_000)
    camera_latency: dict[str, list[int]] = {}
    samples = floor_samples(cases, camera_latency)
    floors: dict[tuple[str, int], float] = {}
    wakeup_floors: dict[tuple[str, int], float] = {}

    with SandboxProcess(auto_approve=True, device_interval=1) as sandbox:
        daemon = DaemonClient(sandbox.info, workdir)
        naive = NaiveClient(sandbox.info, workdir)
        daemon.sign_in()
        runs: list[RunResult] = []
        key_runs: dict[str, RunResult] = {}
        for case in cases:
            # The floor just before and just after the case's runs: this
            # machine's speed drifts by tens of percent over minutes, and a
            # floor measured once at the start was another machine's.
            sample = samples[case.camera, case.width, case.height]
            before = floor_ms(case, sample)
            wakeups = [wakeup_floor_ms(case, sample)] if isinstance(sample, H264Sample) else []
            for client in (daemon, naive):
                # Quick: one run per client, under the lag probe (it costs about
                # 0.1 ms of CPU per frame here). Full: CPU runs without it.
                lag_file = workdir / f"lag-{client.name}-{case.label}.txt" if args.quick else None
                say(f"{case.label}: {client.name} for {window:g} s ...")
                run = await run_case(
                    sandbox, client.with_lag_probe(lag_file), case, window, lag_file=lag_file
                )
                runs.append(run)
                if case == KEY_CASE:
                    key_runs[client.name] = run
            floors[floor_key(case)] = (before + floor_ms(case, sample)) / 2
            if isinstance(sample, H264Sample):
                wakeups.append(wakeup_floor_ms(case, sample))
                wakeup_floors[floor_key(case)] = statistics.fmean(wakeups)
        latency_runs = dict(key_runs)
        if not quick:
            for client in (daemon, naive):
                lag_file = workdir / f"lag-{client.name}-soak.txt"
                say(f"latency over {args.soak:g} s, {KEY_CASE.label}: {client.name} ...")
                latency_runs[client.name] = await run_case(
                    sandbox, client.with_lag_probe(lag_file), KEY_CASE, args.soak, lag_file=lag_file
                )
        pressure: list[tuple[RunResult, RunResult]] = []
        if not quick:
            calm_case = Case(640, 480, 15, 1)
            for client in (daemon, naive):
                client.with_lag_probe(None)
                calm = next(r for r in runs if r.case == calm_case and r.client == client.name)
                say(f"{calm_case.label} beside a busy core: {client.name} ...")
                loaded = await run_case(sandbox, client, calm_case, window, busy_processes=1)
                pressure.append((calm, loaded))
        recoveries: list[RecoveryResult] = []
        for client, drops, starts in (
            ()
            if args.media
            else ((daemon, 1 if quick else 3, 1 if quick else 3), (naive, 1 if quick else 2, 1))
        ):
            client.with_lag_probe(None)
            say(f"recovery: {client.name} ...")
            recoveries.append(
                await run_recovery(sandbox, client, Case(640, 480, 15, 1), drops, starts, within=20)
            )

    targets = (
        []
        if args.media
        else build_targets(
            key_runs, latency_runs, floors, recoveries, help_s, ours_rate, floor_rate
        )
    )
    targets += media_targets(runs, floors)
    text = compose(
        args,
        targets,
        runs,
        floors,
        latency_runs,
        pressure,
        recoveries,
        camera_latency,
        wakeup_floors,
    )
    if not quick:
        write_results(text, runs, floors, latency_runs)
    return text


def compose(
    args: argparse.Namespace,
    targets: list[Target],
    runs: list[RunResult],
    floors: dict[tuple[str, int], float],
    latency_runs: dict[str, RunResult],
    pressure: list[tuple[RunResult, RunResult]],
    recoveries: list[RecoveryResult],
    camera_latency: dict[str, list[int]],
    wakeup_floors: dict[tuple[str, int], float],
) -> str:
    if args.media:
        mode = f"media (the H.264 camera's cases and MJPEG {MJPEG_ONE.label})"
    elif args.quick:
        mode = "quick (key case only, lag probe on)"
    else:
        mode = f"full ({args.window:g} s windows, {args.soak:g} s latency runs)"
    parts = [
        f"# Pipeline bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {mode}\n",
        "## Targets\n",
        report.targets_table(targets),
        "## Every case\n",
        "CPU per frame: the client process's CPU seconds over the frames all viewers decoded."
        " Floor: decode + I420 + VP8 encode per viewer, tight loop, no network;"
        " measured just before and after each case's runs (their mean).\n",
        report.matrix_table([r for r in runs if r.case.camera != "rtsp"], floors),
    ]
    if any(r.case.camera == "rtsp" for r in runs):
        parts += [
            "## H.264 camera (RTSP, High, 2 s GOP)\n",
            "Floor: H.264 decode once + I420 + VP8 encode per viewer, tight loop, no network;"
            " measured just before and after each case's runs (their mean)."
            " Wake-up floor: a bare asyncio process woken by the camera's bytes on TCP,"
            " sending each frame on as UDP datagrams to each viewer, nothing else"
            " (`bench/wakeup_floor.py`), measured beside the floor."
            " Joiner: offer to first frame of a viewer joining the running stream.\n",
            report.h264_table(runs, floors, wakeup_floors),
            camera_latency_table(camera_latency),
        ]
    if not (args.quick or args.media):
        soak = [latency_runs[name] for name in ("intercom-fsm", "naive") if name in latency_runs]
        parts += ["## Latency over the long run\n", report.matrix_table(soak, floors)]
    if pressure:
        parts += [
            "## Under CPU pressure (a busy loop on one core)\n",
            report.pressure_table(pressure),
        ]
    parts += ["## Recovery\n", report.recovery_table(recoveries)]
    return "\n".join(parts)


def write_results(
    text: str,
    runs: list[RunResult],
    floors: dict[tuple[str, int], float],
    latency_runs: dict[str, RunResult],
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.md").write_text(text)
    report.plot_cpu_per_frame(runs, floors, RESULTS / "cpu-per-frame.png")
    report.plot_latency_timeline(
        list(latency_runs.values()), RESULTS / "latency.png", f"latency, {KEY_CASE.label}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the key case only, under 2 minutes")
    parser.add_argument(
        "--media", action="store_true", help="the H.264 camera's cases and MJPEG 640x480@15 x1"
    )
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per case")
    parser.add_argument("--soak", type=float, default=300.0, help="seconds of the latency runs")
    parser.add_argument("--keep", action="store_true", help="keep the logs' directory")
    args = parser.parse_args()
    marker_jitter.install()
    workdir = Path(tempfile.mkdtemp(prefix="intercom-bench-"))
    started = time.monotonic()
    try:
        text = asyncio.run(measure(args, workdir))
    finally:
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    say(text)
    say(f"bench took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
