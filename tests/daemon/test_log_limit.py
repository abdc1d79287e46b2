"""One line per kind of problem per interval, with a count of the rest."""

from __future__ import annotations

import logging

import pytest

from intercom_fsm.log_limit import LogLimiter, kind_of
from intercom_fsm.testing import FakeClock

LOGGER = logging.getLogger("intercom_fsm.test.limits")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER.name]


def test_repeats_within_the_interval_are_counted_and_told_with_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(100.0)
    limiter = LogLimiter(LOGGER, interval=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        assert limiter.log("bad frame", "frame %d is bad", 1)
        for index in range(2, 42):
            clock.advance(0.1)
            assert not limiter.log("bad frame", "frame %d is bad", index)
        assert limiter.log("other", "something else")
        clock.advance(10)
        assert limiter.log("bad frame", "frame %d is bad", 42)
        clock.advance(10)
        assert limiter.log("bad frame", "frame %d is bad", 43)
    assert lines(caplog) == [
        "frame 1 is bad",
        "something else",
        "frame 42 is bad (40 more like this in the last 14 s)",
        "frame 43 is bad",
    ]


def test_the_kinds_remembered_are_bounded_and_a_forgotten_count_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LogLimiter(LOGGER, clock=FakeClock(0.0), max_kinds=3)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        limiter.log("a", "first a")
        limiter.log("a", "second a")
        for kind in ("b", "c", "d"):
            limiter.log(kind, f"first {kind}")
        # 'a' was forgotten: it is a new kind again.
        assert limiter.log("a", "third a")
    assert lines(caplog) == [
        "first a",
        "first b",
        "first c",
        "1 more 'a' problems were not logged",
        "first d",
        "third a",
    ]


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("offer refused: 3 viewers already (session 'x')", "offer refused"),
        ("hangup for unknown viewer session 'nobody' ignored", "hangup for unknown viewer session"),
        ("dropped signaling 'offer' message: missing field", "dropped signaling"),
        ("camera offline: unplugged", "camera offline"),
        ("   ", "problem"),
    ],
)
def test_a_kind_is_the_fixed_start_of_a_message(message: str, kind: str) -> None:
    assert kind_of(message) == kind
