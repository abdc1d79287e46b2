"""When the capture thread reads and delivers pictures.

Two clocks, both of which skip what they missed instead of catching up, so a
stalled or starved capture never sends a burst of old pictures afterwards:

* :class:`Pacer` for sources the thread must pace itself (files, the test
  pattern, the offline picture): the thread sleeps until :meth:`Pacer.due`.
* :class:`Decimator` for live sources, which hand out pictures at their own
  rate: it picks which of them to deliver so that at most ``fps`` go out.
"""

from __future__ import annotations

import math


class Pacer:
    """Due times every ``interval`` seconds, in phase with the first one."""

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self._due: float | None = None

    def due(self, now: float) -> float:
        """When the next event is due (``now`` for the very first one)."""
        if self._due is None:
            self._due = now
        return self._due

    def advance(self, now: float) -> None:
        """The due event happened at ``now``; schedule the next one after ``now``."""
        due = self.due(now)
        missed = math.floor((now - due) / self._interval) if now > due else 0
        following = due + (missed + 1) * self._interval
        if following <= now:  # rounding, when ``now`` falls right on a due time
            following += self._interval
        self._due = following


class Decimator:
    """Keeps at most one picture per ``interval`` from a live source.

    A picture counts as on time when it comes up to :attr:`EARLY` of an
    interval before its due time, so a source running at exactly the
    configured rate, with some jitter, keeps every picture; a source at twice
    the rate keeps every second one (its other pictures come half an interval
    early, which is not a tie that jitter decides). Two kept pictures are at
    least half an interval apart.
    """

    EARLY = 0.4

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self._early = interval * self.EARLY
        self._gap = interval / 2
        self._due: float | None = None
        self._last: float | None = None

    def accept(self, now: float) -> bool:
        if self._due is not None and self._last is not None:
            if now < self._due - self._early or now - self._last < self._gap:
                return False
            self._due = max(self._due + self._interval, now)
        else:
            self._due = now + self._interval
        self._last = now
        return True
