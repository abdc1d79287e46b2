"""Slow, lossy and broken links, measured against the naive client, in one run.

    python bench/network.py --quick     # about 6 minutes: short windows
    python bench/network.py             # about 15 minutes; writes bench/results/network.md

Needs root (network namespaces), iproute2 and nftables (``make netlab``). Each
case runs the client under test (the daemon, then ``bench/naive_client.py``)
in a network namespace with the time-stamping camera at 640x480@15, and
viewers in namespaces of their own behind veth links shaped with tbf and
nftables (``bench/network_runs.py``): a viewer behind 300 kbit/s with 3 %
loss, behind 1 Mbit/s with 1 % loss, unconstrained; two viewers at once, one
slow and one fast; a 5 s total outage of the device. Figures per viewer: fps
achieved, latency p50/p95 and its growth over the window, the longest freeze,
bitrate, keyframes, and the time back to fresh frames after the outage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the root
    sys.path.insert(0, str(ROOT))

from bench.network_runs import (  # noqa: E402
    CLEAN,
    MEDIUM,
    SETTLE_SECONDS,
    SLOW,
    NetCase,
    NetRun,
    ViewerFigures,
    run_network_case,
)
from bench.report import Target, fmt, judge, targets_table  # noqa: E402
from tests.netlab.lab import missing_requirements  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 15
CLIENTS = ("intercom-fsm", "naive")
RESULTS = ROOT / "bench" / "results"


def cases(quick: bool) -> list[NetCase]:
    long, short, outage = (20.0, 15.0, 25.0) if quick else (120.0, 60.0, 30.0)
    return [
        NetCase("slow", "behind 300 kbit/s, 3 % loss", (("viewer", SLOW),), long),
        NetCase("medium", "behind 1 Mbit/s, 1 % loss", (("viewer", MEDIUM),), short),
        NetCase("clean", "unconstrained", (("viewer", CLEAN),), short),
        NetCase("two", "two viewers: slow and fast", (("slow", SLOW), ("fast", CLEAN)), short),
        NetCase("outage", "5 s total outage", (("viewer", CLEAN),), outage, outage=5.0),
    ]


def say(text: str) -> None:
    print(text, flush=True)


def measure(
    quick: bool, workdir: Path, only: set[str] | None = None
) -> tuple[list[NetRun], list[Target]]:
    runs: list[NetRun] = []
    for case in cases(quick):
        if only and case.key not in only:
            continue
        for client in CLIENTS:
            say(f"{case.label}: {client} for {case.seconds:g} s ...")
            run = run_network_case(
                client, case, workdir / f"{case.key}-{client}", WIDTH, HEIGHT, FPS
            )
            if run.failure:
                say(f"  failed: {run.failure}")
            runs.append(run)
    return runs, build_targets(runs)


def find(runs: list[NetRun], case: str, client: str, viewer: str) -> ViewerFigures | None:
    run = next((r for r in runs if r.case.key == case and r.client == client), None)
    return None if run is None or run.failure else run.viewer(viewer)


def build_targets(runs: list[NetRun]) -> list[Target]:
    def both(case: str, viewer: str) -> tuple[ViewerFigures | None, ViewerFigures | None]:
        return find(runs, case, "intercom-fsm", viewer), find(runs, case, "naive", viewer)

    def row(
        measure: str,
        target: str,
        figures: tuple[ViewerFigures | None, ViewerFigures | None],
        value: Callable[[ViewerFigures], float | None],
        unit: str,
        digits: int,
        passes: Callable[[float], bool],
    ) -> Target:
        ours, naive = (None if f is None else value(f) for f in figures)
        return Target(
            measure, target, fmt(ours, unit, digits), fmt(naive, unit, digits), judge(ours, passes)
        )

    slow = both("slow", "viewer")
    two_slow, two_fast = both("two", "slow"), both("two", "fast")
    clean = both("clean", "viewer")
    kept = tuple(
        None if f is None or c is None or not c.kbit_per_second else _share(f, c)
        for f, c in zip(two_fast, clean, strict=True)
    )
    ours_kept, naive_kept = kept
    return [
        row("fps achieved, 300 kbit/s + 3 %", ">= 80 %", slow, _fps, " %", 1, lambda v: v >= 80),
        row(
            "latency p95, 300 kbit/s + 3 %",
            "<= 400 ms",
            slow,
            lambda f: f.latency(0.95),
            " ms",
            0,
            lambda v: v <= 400,
        ),
        row(
            "latency p95 growth, last third − first third",
            "none (<= 50 ms)",
            slow,
            lambda f: f.growth_ms,
            " ms",
            0,
            lambda v: v <= 50,
        ),
        row(
            "longest freeze after the first frame, 300 kbit/s + 3 %",
            "<= 2 s",
            slow,
            lambda f: f.longest_freeze_s,
            " s",
            2,
            lambda v: v <= 2,
        ),
        row(
            "two viewers: the slow one's fps", ">= 80 %", two_slow, _fps, " %", 1, lambda v: v >= 80
        ),
        Target(
            "two viewers: the fast one's bitrate / its unconstrained bitrate",
            ">= 90 %",
            fmt(ours_kept, " %", 0),
            fmt(naive_kept, " %", 0),
            judge(ours_kept, lambda v: v >= 90),
        ),
        row(
            "back to fresh frames after a 5 s outage",
            "<= 2 s",
            both("outage", "viewer"),
            lambda f: f.back_to_fresh_s,
            " s",
            2,
            lambda v: v <= 2,
        ),
    ]


def _fps(figures: ViewerFigures) -> float:
    return 100 * figures.fps_ratio


def _share(fast: ViewerFigures, clean: ViewerFigures) -> float | None:
    if fast.kbit_per_second is None or not clean.kbit_per_second:
        return None
    return 100 * fast.kbit_per_second / clean.kbit_per_second


def matrix_table(runs: list[NetRun]) -> str:
    lines = [
        "| case | client | viewer | link | fps achieved | latency p50 / p95 | p95 growth"
        " | longest freeze | kbit/s | keyframes | back to fresh |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.failure:
            lines.append(f"| {run.case.label} | {run.client} | failed: {run.failure[:120]} |")
            continue
        for v in run.viewers:
            lines.append(
                f"| {run.case.label} | {run.client} | {v.name} | {v.link.label}"
                f" | {100 * v.fps_ratio:.1f} %"
                f" | {fmt(v.latency(0.5), '', 0)} / {fmt(v.latency(0.95), ' ms', 0)}"
                f" | {fmt(v.growth_ms, ' ms', 0)} | {fmt(v.longest_freeze_s, ' s', 2)}"
                f" | {fmt(v.kbit_per_second)} | {v.keyframes}"
                f" | {fmt(v.back_to_fresh_s, ' s', 2)} |"
            )
    return "\n".join(lines) + "\n"


def compose(quick: bool, runs: list[NetRun], targets: list[Target]) -> str:
    mode = "quick (short windows)" if quick else "full"
    windows = ", ".join(f"{c.key} {c.seconds:g} s" for c in cases(quick))
    notes = [f"- {r.client}, outage: {r.outage_note}" for r in runs if r.outage_note]
    return "\n".join(
        [
            f"# Network bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {mode}\n",
            f"{WIDTH}x{HEIGHT}@{FPS}, windows: {windows},"
            f" each after a {SETTLE_SECONDS:g} s settling time.\n",
            "## Targets\n",
            targets_table(targets),
            "## Every case\n",
            matrix_table(runs),
            "## The outage, in the daemon's log\n",
            "\n".join(notes) + "\n" if notes else "(no log)\n",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, about 6 minutes")
    parser.add_argument("--keep", action="store_true", help="keep the logs' directory")
    parser.add_argument(
        "--cases", help="comma-separated: slow, medium, clean, two, outage (default: all)"
    )
    args = parser.parse_args()
    only = set(args.cases.split(",")) if args.cases else None
    problem = missing_requirements()
    if problem is not None:
        say(f"the network bench cannot run here: {problem}")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="intercom-netbench-"))
    started = time.monotonic()
    try:
        runs, targets = measure(args.quick, workdir, only)
    finally:
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = compose(args.quick, runs, targets)
    if not args.quick and only is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "network.md").write_text(text)
    say(text)
    say(f"bench took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
