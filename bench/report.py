"""Turning pipeline runs into the tables the bench prints and writes, and the
plots.

Every figure in the targets table comes from a run of this same bench
invocation; a target a figure misses is marked MISS, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.runs import RecoveryResult, RunResult, floor_key, percentile

MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    measure: str
    target: str
    ours: str
    naive: str
    met: bool | None
    """None: nothing to judge (the run failed or the figure does not exist)."""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "n/a"}[self.met]


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def latency_summary(run: RunResult | None) -> str:
    if run is None or not run.latencies_ms:
        return "—"
    p50, p95 = percentile(run.latencies_ms, 0.5), percentile(run.latencies_ms, 0.95)
    return f"{p50:.0f} / {p95:.0f} / {max(run.latencies_ms)} ms"


def latency_growth_ms(run: RunResult | None) -> float | None:
    """p95 latency of the run's last third minus that of its first third."""
    if run is None or len(run.latency_timeline) < 30:
        return None
    span = run.latency_timeline[-1][0]
    first = [lat for t, lat in run.latency_timeline if t < span / 3]
    last = [lat for t, lat in run.latency_timeline if t >= 2 * span / 3]
    early, late = percentile(first, 0.95), percentile(last, 0.95)
    return None if early is None or late is None else late - early


def overhead(run: RunResult | None, floor_ms: float | None) -> float | None:
    if run is None or run.cpu_per_frame_ms is None or not floor_ms:
        return None
    return run.cpu_per_frame_ms / floor_ms


def matrix_table(runs: Sequence[RunResult], floors_ms: dict[tuple[str, int], float]) -> str:
    lines = [
        "| case | client | fps achieved | latency p50 / p95 / max | offer → first frame"
        " | CPU per frame | floor | overhead | peak RSS | kbit/s per viewer | unreadable stamps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.failure:
            lines.append(f"| {run.case.label} | {run.client} | failed: {run.failure[:80]} |")
            continue
        floor = floors_ms.get(floor_key(run.case))
        first = max(run.first_frame_s) if run.first_frame_s else None
        lines.append(
            f"| {run.case.label} | {run.client} | {100 * run.achieved_fps_ratio:.1f} %"
            f" | {latency_summary(run)} | {fmt(first and first * 1000, ' ms')}"
            f" | {fmt(run.cpu_per_frame_ms, ' ms', 2)} | {fmt(floor, ' ms', 2)}"
            f" | {fmt(overhead(run, floor), '×', 2)}"
            f" | {fmt(run.peak_rss_bytes / MIB, ' MiB')} | {fmt(run.kbit_per_viewer)}"
            f" | {run.unreadable_stamps} |"
        )
    return "\n".join(lines) + "\n"


def h264_table(
    runs: Sequence[RunResult],
    floors_ms: dict[tuple[str, int], float],
    wakeup_floors_ms: dict[tuple[str, int], float],
) -> str:
    """The H.264 camera's cases: what passing its stream through saves, and
    how far the passthrough is above a bare event loop's wake-ups."""
    lines = [
        "| case | client | fps achieved | latency p50 / p95 / max | CPU per frame | floor"
        " | CPU / floor | wake-up floor | joiner's first frame | peak RSS | kbit/s per viewer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.case.camera != "rtsp":
            continue
        if run.failure:
            lines.append(f"| {run.case.label} | {run.client} | failed: {run.failure[:80]} |")
            continue
        floor = floors_ms.get(floor_key(run.case))
        joiner = run.joiner_first_frame_s
        lines.append(
            f"| {run.case.label} | {run.client} | {100 * run.achieved_fps_ratio:.1f} %"
            f" | {latency_summary(run)} | {fmt(run.cpu_per_frame_ms, ' ms', 2)}"
            f" | {fmt(floor, ' ms', 2)} | {fmt(overhead(run, floor), '×', 2)}"
            f" | {fmt(wakeup_floors_ms.get(floor_key(run.case)), ' ms', 2)}"
            f" | {fmt(joiner and joiner * 1000, ' ms')}"
            f" | {fmt(run.peak_rss_bytes / MIB, ' MiB')} | {fmt(run.kbit_per_viewer)} |"
        )
    return "\n".join(lines) + "\n"


def recovery_table(results: Sequence[RecoveryResult]) -> str:
    def seconds(values: list[float | None]) -> str:
        if not values:
            return "—"
        return ", ".join("no frame" if v is None else f"{v:.2f}" for v in values)

    lines = [
        "| client | socket drop → first frame (s, each drop)"
        " | start → first frame (s, each start) |",
        "|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.client} | {seconds(result.socket_drop_s)}"
            f" | {seconds(result.cold_start_s)} |"
        )
    return "\n".join(lines) + "\n"


def pressure_table(pairs: Sequence[tuple[RunResult, RunResult]]) -> str:
    lines = [
        "| client | case | unloaded fps / latency p95 | with a busy core fps / latency p95 |",
        "|---|---|---|---|",
    ]

    def cell(run: RunResult) -> str:
        p95 = fmt(percentile(run.latencies_ms, 0.95), " ms")
        return f"{100 * run.achieved_fps_ratio:.0f} % / {p95}"

    for calm, loaded in pairs:
        lines.append(f"| {calm.client} | {calm.case.label} | {cell(calm)} | {cell(loaded)} |")
    return "\n".join(lines) + "\n"


def targets_table(targets: Sequence[Target]) -> str:
    lines = [
        "| measure | target | intercom-fsm | naive client | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {t.measure} | {t.target} | {t.ours} | {t.naive} | {t.verdict} |" for t in targets]
    return "\n".join(lines) + "\n"


def judge(value: float | None, test: Callable[[float], bool]) -> bool | None:
    return None if value is None else test(value)


def floor_ratio_target(
    floor_name: str,
    case_label: str,
    limit: float,
    runs: tuple[RunResult | None, RunResult | None],
    floor_ms: float | None,
) -> Target:
    """CPU per frame over ``floor_ms``, ours against at most ``limit`` times
    it; ``runs``: ours and the naive client's."""
    ours, naive = runs
    ratio = overhead(ours, floor_ms)
    return Target(
        f"CPU per frame / {floor_name} ({fmt(floor_ms, ' ms', 2)}), {case_label}",
        f"<= {limit}×",
        fmt(ratio, "×", 2),
        fmt(overhead(naive, floor_ms), "×", 2),
        judge(ratio, lambda value: value <= limit),
    )


def plot_latency_timeline(runs: Sequence[RunResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4))
    for run in runs:
        if run.latency_timeline:
            times, latencies = zip(*run.latency_timeline, strict=True)
            axes.plot(times, latencies, ".", markersize=2, label=run.client)
    axes.axhline(120, color="grey", linestyle="--", linewidth=1, label="target p95 120 ms")
    axes.set_xlabel("seconds into the run")
    axes.set_ylabel("glass-to-glass latency (ms)")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_cpu_per_frame(
    runs: Sequence[RunResult], floors_ms: dict[tuple[str, int], float], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(run.case.label for run in runs))
    series: dict[str, list[float]] = {"floor": [], "intercom-fsm": [], "naive": []}
    for label in labels:
        chosen = [run for run in runs if run.case.label == label]
        case = chosen[0].case
        series["floor"].append(floors_ms.get(floor_key(case), 0.0))
        for client in ("intercom-fsm", "naive"):
            run = next((r for r in chosen if r.client == client), None)
            series[client].append(run.cpu_per_frame_ms or 0.0 if run is not None else 0.0)
    figure, axes = plt.subplots(figsize=(9, 4))
    width = 0.27
    for offset, (name, values) in enumerate(series.items()):
        positions = [i + (offset - 1) * width for i in range(len(labels))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks(range(len(labels)), labels, rotation=20)
    axes.set_ylabel("client CPU per streamed frame (ms)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
