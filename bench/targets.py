"""The pipeline bench's targets for the MJPEG camera's key case, the latency
run, recovery, the command line and the machine (``bench/pipeline.py``); the
media path's are in :mod:`bench.media`."""

from __future__ import annotations

from bench import report
from bench.report import Target, fmt, judge
from bench.runs import Case, RecoveryResult, RunResult, percentile

KEY_CASE = Case(640, 480, 15, 3)


def build_targets(
    key_runs: dict[str, RunResult],
    latency_runs: dict[str, RunResult],
    floors: dict[tuple[str, int], float],
    recoveries: list[RecoveryResult],
    help_s: float,
    ours_rate: float,
    floor_rate: float,
) -> list[Target]:
    ours, naive = key_runs.get("intercom-fsm"), key_runs.get("naive")
    ours_lat, naive_lat = latency_runs.get("intercom-fsm"), latency_runs.get("naive")
    floor = floors.get((f"{KEY_CASE.width}x{KEY_CASE.height}", KEY_CASE.viewers))

    def fps(run: RunResult | None) -> float | None:
        return None if run is None or run.failure else 100 * run.achieved_fps_ratio

    def p95(run: RunResult | None) -> float | None:
        return None if run is None else percentile(run.latencies_ms, 0.95)

    def first_ms(run: RunResult | None) -> float | None:
        return None if run is None or not run.first_frame_s else 1000 * max(run.first_frame_s)

    def lag(run: RunResult | None, fraction: float) -> float | None:
        return (
            None if run is None or not run.lag_s else 1000 * (percentile(run.lag_s, fraction) or 0)
        )

    def worst(values: list[float | None]) -> float | None:
        if not values:
            return None
        return None if any(v is None for v in values) else max(v for v in values if v is not None)

    by_client = {r.client: r for r in recoveries}
    drop = {name: worst(r.socket_drop_s) for name, r in by_client.items()}
    start = {name: worst(r.cold_start_s) for name, r in by_client.items()}
    ours_cpu = ours.cpu_per_frame_ms if ours else None
    naive_cpu = naive.cpu_per_frame_ms if naive else None
    growth = report.latency_growth_ms(ours_lat)
    lag99 = lag(ours_lat, 0.99)
    return [
        Target(
            f"fps achieved, {KEY_CASE.label}",
            ">= 99 %",
            fmt(fps(ours), " %", 1),
            fmt(fps(naive), " %", 1),
            judge(fps(ours), lambda v: v >= 99),
        ),
        Target(
            f"latency p95, {KEY_CASE.label}",
            "<= 120 ms",
            fmt(p95(ours_lat), " ms"),
            fmt(p95(naive_lat), " ms"),
            judge(p95(ours_lat), lambda v: v <= 120),
        ),
        Target(
            "latency p95 growth, last third − first third of the run",
            "none (<= 20 ms)",
            fmt(growth, " ms"),
            fmt(report.latency_growth_ms(naive_lat), " ms"),
            judge(growth, lambda v: v <= 20),
        ),
        report.floor_ratio_target("encoder floor", KEY_CASE.label, 1.3, (ours, naive), floor),
        Target(
            f"CPU per frame, {KEY_CASE.label}",
            "< naive",
            fmt(ours_cpu, " ms", 2),
            fmt(naive_cpu, " ms", 2),
            None if ours_cpu is None or naive_cpu is None else ours_cpu < naive_cpu,
        ),
        Target(
            "offer → first frame (worst viewer)",
            "<= 500 ms",
            fmt(first_ms(ours), " ms"),
            fmt(first_ms(naive), " ms"),
            judge(first_ms(ours), lambda v: v <= 500),
        ),
        Target(
            "socket drop → first frame (worst isolated drop)",
            "<= 2 s",
            fmt(drop.get("intercom-fsm"), " s", 2),
            fmt(drop.get("naive"), " s", 2),
            judge(drop.get("intercom-fsm"), lambda v: v <= 2),
        ),
        Target(
            "process start → first frame (stored tokens; naive signs in)",
            "—",
            fmt(start.get("intercom-fsm"), " s", 2),
            fmt(start.get("naive"), " s", 2),
            None,
        ),
        Target(
            f"event-loop lag p99 / max, {KEY_CASE.label}",
            "p99 <= 10 ms",
            f"{fmt(lag99, ' ms', 1)} / {fmt(lag(ours_lat, 1.0), ' ms', 1)}",
            f"{fmt(lag(naive_lat, 0.99), ' ms', 1)} / {fmt(lag(naive_lat, 1.0), ' ms', 1)}",
            judge(lag99, lambda v: v <= 10),
        ),
        Target("`intercom-fsm --help`", "< 300 ms", fmt(1000 * help_s, " ms"), "—", help_s < 0.3),
        Target(
            "machine dispatch (trivial `transitions` Machine beside)",
            "> 10,000 ev/s",
            f"{ours_rate:,.0f} ev/s",
            f"{floor_rate:,.0f} ev/s (trivial)",
            ours_rate > 10_000,
        ),
    ]
