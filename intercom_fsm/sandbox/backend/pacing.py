"""``slow_down`` for device polls (RFC 8628 §3.5), which django-oauth-toolkit never answers.

A device must wait ``interval`` seconds between two polls of the token
endpoint. A poll that comes sooner gets ``slow_down`` and, as the RFC says,
the interval the device must keep grows by 5 seconds for the rest of the flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SLOW_DOWN_STEP_SECONDS = 5.0
# Requests are timed on arrival, so a device that waits exactly the interval
# after the previous answer still arrives a little later than interval after
# the previous request; the tolerance only absorbs timer jitter.
TOLERANCE_SECONDS = 0.1


@dataclass
class _PollHistory:
    last_poll: float
    interval: float


class PollPacer:
    """Remembers when each device code last polled and the interval it must keep."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._history: dict[str, _PollHistory] = {}
        self._lock = threading.Lock()

    def too_fast(self, device_code: str, interval: float) -> bool:
        """Record a poll; True when it came sooner than the device's current interval.

        The first poll of a flow is never too fast: the RFC paces polls against
        each other, not against the authorization request.
        """
        now = self._clock()
        with self._lock:
            history = self._history.get(device_code)
            if history is None:
                self._history[device_code] = _PollHistory(last_poll=now, interval=interval)
                return False
            elapsed = now - history.last_poll
            history.last_poll = now
            if elapsed + TOLERANCE_SECONDS >= history.interval:
                return False
            history.interval += SLOW_DOWN_STEP_SECONDS
            return True

    def required_interval(self, device_code: str) -> float | None:
        """The interval the device must now keep, or None when it has not polled yet."""
        with self._lock:
            history = self._history.get(device_code)
            return None if history is None else history.interval

    def forget(self, device_code: str) -> None:
        """Drop a finished flow's history."""
        with self._lock:
            self._history.pop(device_code, None)


POLL_PACER = PollPacer()
