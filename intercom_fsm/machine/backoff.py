"""Exponential backoff with full jitter, bounded, reset after a stable period.

The delay for attempt ``n`` is drawn uniformly from ``[0, min(cap, base * 2**n)]``
("full jitter": many devices that lost the same backend do not come back in
step). The attempt count goes back to zero when the device had been healthy
(a success and no failure since) for ``stable_after`` seconds, so a link that
flaps every few seconds keeps backing off while one that ran for an hour
retries quickly.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs


@attrs.frozen
class BackoffPolicy:
    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base and self.stable_after >= 0):
            raise ValueError("backoff needs 0 < base <= cap and stable_after >= 0")


@attrs.define
class Backoff:
    policy: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    attempt: int = 0
    healthy_since: float | None = None
    last_delay: float | None = None

    def succeeded(self, now: float) -> None:
        if self.healthy_since is None:
            self.healthy_since = now

    def next_delay(self, now: float, random: Callable[[], float]) -> float:
        """The delay before the next retry; counts one more attempt."""
        if self.healthy_since is not None and now - self.healthy_since >= self.policy.stable_after:
            self.attempt = 0
        self.healthy_since = None
        # 2**attempt overflows a float long before the cap stops mattering.
        exponent = min(self.attempt, 62)
        ceiling = min(self.policy.cap, self.policy.base * (2.0**exponent))
        self.attempt += 1
        delay = min(ceiling, max(0.0, random() * ceiling))
        self.last_delay = delay
        return delay
