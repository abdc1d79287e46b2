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
        (
            "offer refused: 3 viewers already (session 'x')",
            "offer refused: # viewers already (session '…')",
        ),
        (
            "hangup for unknown viewer session 'nobody' ignored",
            "hangup for unknown viewer session '…' ignored",
        ),
        (
            "dropped signaling 'offer' message: field 'sdp' is empty",
            "dropped signaling '…' message: field '…' is empty",
        ),
        ("camera offline:  unplugged\n", "camera offline: unplugged"),
        ("   ", "problem"),
    ],
)
def test_a_kind_is_the_message_without_what_varies(message: str, kind: str) -> None:
    assert kind_of(message) == kind


def test_two_different_problems_are_two_kinds_and_repeats_one() -> None:
    assert kind_of("dropped signaling message: frame is an array, not a JSON object") != kind_of(
        "dropped signaling message: frame is not valid JSON"
    )
    assert kind_of("hangup for unknown viewer session 'flood-1' ignored") == kind_of(
        "hangup for unknown viewer session 'nobody-here' ignored"
    )


def test_a_repeat_held_back_is_still_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0.0)
    limiter = LogLimiter(LOGGER, interval=10, clock=clock)
    with caplog.at_level(logging.DEBUG, logger=LOGGER.name):
        limiter.log("bad frame", "frame %d is bad", 1)
        clock.advance(1)
        assert not limiter.log("bad frame", "frame %d is bad", 2)
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER.name] == [
        (logging.WARNING, "frame 1 is bad"),
        (logging.DEBUG, "frame 2 is bad"),
    ]
