"""The capture thread's clocks: paced reads never burst, live sources are
thinned to the configured rate."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_fsm.adapters.camera.pacing import Decimator, Pacer


def test_pacer_keeps_its_phase() -> None:
    pacer = Pacer(0.2)
    assert pacer.due(10.0) == 10.0
    pacer.advance(10.001)
    assert pacer.due(10.1) == pytest.approx(10.2)
    pacer.advance(10.25)
    assert pacer.due(10.3) == pytest.approx(10.4)


def test_pacer_skips_what_it_missed_instead_of_catching_up() -> None:
    pacer = Pacer(0.2)
    pacer.advance(pacer.due(0.0))
    pacer.advance(1.05)  # stalled for five intervals
    assert pacer.due(1.05) == pytest.approx(1.2)


@given(
    st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=50),
    st.floats(min_value=0.01, max_value=1.0),
)
def test_pacer_is_always_ahead_of_the_last_event(lateness: list[float], interval: float) -> None:
    pacer = Pacer(interval)
    now = 0.0
    for late in lateness:
        now = max(now, pacer.due(now)) + late
        pacer.advance(now)
        assert now < pacer.due(now) <= now + interval + 1e-9


def test_decimator_thins_a_30_fps_camera_to_5_fps() -> None:
    decimator = Decimator(1 / 5)
    kept = [n for n in range(300) if decimator.accept(n / 30)]
    assert 49 <= len(kept) <= 51


def test_decimator_keeps_every_picture_at_its_own_rate_despite_jitter() -> None:
    decimator = Decimator(1 / 30)
    jitter = [0.004, -0.004, 0.006, -0.002, 0.0]
    kept = sum(decimator.accept(n / 30 + jitter[n % len(jitter)]) for n in range(300))
    assert kept == 300


@given(
    st.lists(st.floats(min_value=0.0, max_value=0.3), min_size=1, max_size=200),
    st.floats(min_value=0.02, max_value=0.5),
)
def test_decimator_never_bursts(gaps: list[float], interval: float) -> None:
    decimator = Decimator(interval)
    now = 0.0
    kept: list[float] = []
    for gap in gaps:
        now += gap
        if decimator.accept(now):
            kept.append(now)
    assert all(b - a >= interval / 2 - 1e-9 for a, b in itertools.pairwise(kept))
    # Over any stretch, no more than one picture per interval (plus the first).
    assert len(kept) <= (kept[-1] - kept[0]) / interval + 2


def test_intervals_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
    with pytest.raises(ValueError, match="positive"):
        Decimator(-1)


def test_decimator_keeps_every_second_picture_of_a_source_at_twice_the_rate() -> None:
    decimator = Decimator(1 / 5)
    # The pictures between two kept ones come a little late: still half an
    # interval early, never on time.
    kept = [n for n in range(100) if decimator.accept(n / 10 + (0.003 if n % 2 else -0.003))]
    steps = {b - a for a, b in itertools.pairwise(kept)}
    assert steps == {2}, kept
