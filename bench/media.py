"""The pipeline bench's cases and targets for the media path: the H.264 RTSP
camera passed through, and MJPEG decoded straight to I420 (issue 16)."""

from __future__ import annotations

import statistics

from bench import report, wakeup_floor
from bench.floor import H264Sample
from bench.report import Target, fmt, judge
from bench.rtsp_source import GOP_SECONDS
from bench.runs import Case, RunResult, floor_key, percentile

MJPEG_ONE = Case(640, 480, 15, 1)
H264_MATRIX = (
    Case(640, 480, 15, 1, "rtsp"),
    Case(640, 480, 15, 3, "rtsp"),
    Case(1280, 720, 30, 1, "rtsp"),
    Case(1280, 720, 30, 3, "rtsp"),
)


def wakeup_floor_ms(case: Case, sample: H264Sample, seconds: float = 6.0) -> float:
    """``case``'s wake-up floor (:mod:`bench.wakeup_floor`): the camera's mean
    access unit at the case's rate, sent on to each of its viewers."""
    frame_bytes = round(statistics.fmean(packet.size for packet in sample.packets))
    return wakeup_floor.measure(case.fps, frame_bytes, case.viewers, seconds).ms_per_frame


def media_targets(runs: list[RunResult], floors: dict[tuple[str, int], float]) -> list[Target]:
    """The targets of the H.264 camera and of the MJPEG path without BGR."""

    def run_of(case: Case, client: str) -> RunResult | None:
        return next((r for r in runs if r.case == case and r.client == client), None)

    targets: list[Target] = []
    for case in H264_MATRIX:
        limit = 0.15 if case.viewers >= 3 else 0.25
        ours, naive = run_of(case, "intercom-fsm"), run_of(case, "naive")
        if ours is None:
            continue
        targets.append(
            report.floor_ratio_target(
                "floor", case.label, limit, (ours, naive), floors.get(floor_key(case))
            )
        )
    joiners = {
        client: [
            r.joiner_first_frame_s
            for r in runs
            if r.client == client and r.case.camera == "rtsp" and not r.failure
        ]
        for client in ("intercom-fsm", "naive")
    }

    def worst(values: list[float | None]) -> float | None:
        if not values or any(v is None for v in values):
            return None
        return 1000 * max(v for v in values if v is not None)

    joiner_limit = 1000 * GOP_SECONDS + 200
    ours_joiner = worst(joiners["intercom-fsm"])
    targets.append(
        Target(
            "joiner's first frame, H.264 camera (worst case)",
            f"<= one GOP + 200 ms ({joiner_limit:.0f} ms)",
            fmt(ours_joiner, " ms"),
            fmt(worst(joiners["naive"]), " ms"),
            judge(ours_joiner, lambda v: v <= joiner_limit),
        )
    )
    for case in H264_MATRIX:
        ours, naive = run_of(case, "intercom-fsm"), run_of(case, "naive")
        if ours is not None:
            targets.append(
                Target(
                    f"latency p50 / p95 / max, {case.label}",
                    "—",
                    report.latency_summary(ours),
                    report.latency_summary(naive),
                    None,
                )
            )
    ours, naive = run_of(MJPEG_ONE, "intercom-fsm"), run_of(MJPEG_ONE, "naive")
    mjpeg_floor = floors.get(floor_key(MJPEG_ONE))
    targets.append(
        report.floor_ratio_target(
            "floor", f"MJPEG {MJPEG_ONE.label}", 1.0, (ours, naive), mjpeg_floor
        )
    )
    ours_rss = None if ours is None or not ours.peak_rss_bytes else ours.peak_rss_bytes / report.MIB
    naive_rss = (
        None if naive is None or not naive.peak_rss_bytes else naive.peak_rss_bytes / report.MIB
    )
    targets.append(
        Target(
            f"peak RSS, MJPEG {MJPEG_ONE.label}",
            "<= naive",
            fmt(ours_rss, " MiB"),
            fmt(naive_rss, " MiB"),
            None if ours_rss is None or naive_rss is None else ours_rss <= naive_rss,
        )
    )
    return targets


def camera_latency_table(camera_latency: dict[str, list[int]]) -> str:
    lines = [
        "The camera's own latency (the bench reads it directly: PyAV over TCP, every"
        " picture decoded), part of both clients' figures above:\n",
        "| camera | latency p50 / p95 |",
        "|---|---|",
    ]
    lines += [
        f"| H.264 RTSP {size} | {fmt(percentile(values, 0.5), ' ms')}"
        f" / {fmt(percentile(values, 0.95), ' ms')} |"
        for size, values in camera_latency.items()
    ]
    return "\n".join(lines) + "\n"
