"""bench/wakeup_floor.py: a bare asyncio client woken by a camera's bytes, its
CPU per frame, shown beside the daemon's in the H.264 camera's table; and its
variants (a blocking thread, the daemon's own per-picture work)."""

from __future__ import annotations

import pytest

from bench import report, wakeup_floor
from bench.runs import Case, RunResult, floor_key


def test_the_client_sends_every_frame_and_its_cpu_is_counted_per_viewer() -> None:
    one = wakeup_floor.measure(fps=30, frame_bytes=3000, viewers=1, seconds=1.5)
    three = wakeup_floor.measure(fps=30, frame_bytes=3000, viewers=3, seconds=1.5)
    for floor in (one, three):
        # 45 frames in 1.5 s, give or take the edges of the window.
        assert 40 <= floor.frames <= 50, floor
        assert 0 < floor.ms_per_frame < 20, floor
    # Three viewers cost more sends but one wake-up: less per frame streamed.
    assert three.ms_per_frame < one.ms_per_frame


@pytest.mark.parametrize(
    ("client", "work"), [("thread", "bare"), ("loop", "passthrough"), ("thread", "passthrough")]
)
def test_a_blocking_client_and_the_daemons_work_stream_every_frame(client: str, work: str) -> None:
    floor = wakeup_floor.measure(
        fps=30, frame_bytes=3000, viewers=2, seconds=1.5, client=client, work=work
    )
    assert 40 <= floor.frames <= 50, floor
    assert 0 < floor.ms_per_frame < 20, floor


def test_an_unknown_client_or_work_is_refused() -> None:
    with pytest.raises(ValueError, match="a client is one of"):
        wakeup_floor.measure(15, 3000, client="fibre")
    with pytest.raises(ValueError, match="its work one of"):
        wakeup_floor.measure(15, 3000, work="transcode")


@pytest.mark.parametrize(
    ("fps", "frame_bytes", "viewers"), [(0, 3000, 1), (15, 1, 1), (15, 3000, 0)]
)
def test_a_stream_without_rate_bytes_or_viewers_is_refused(
    fps: float, frame_bytes: int, viewers: int
) -> None:
    with pytest.raises(ValueError, match="a frame has bytes"):
        wakeup_floor.measure(fps, frame_bytes, viewers, seconds=1)


def test_the_h264_table_shows_each_cases_wake_up_floor() -> None:
    case = Case(640, 480, 15, 1, "rtsp")
    run = RunResult("intercom-fsm", case, seconds=10, frames=150, cpu_seconds=0.12)
    table = report.h264_table([run], {floor_key(case): 2.0}, {floor_key(case): 0.31})
    header, _rule, row = table.strip().splitlines()
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert cells["CPU per frame"] == "0.80 ms"
    assert cells["CPU / floor"] == "0.40×"
    assert cells["wake-up floor"] == "0.31 ms"
