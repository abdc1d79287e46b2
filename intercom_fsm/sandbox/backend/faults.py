"""Faults the control API can inject into the OAuth endpoints, for the client's error paths.

A fault is queued for one endpoint and taken by its next requests, ``count``
of them. Kinds:

* ``status``: answer with that HTTP status (500, 503, 429, ...) and a short
  JSON body (429 also carries ``Retry-After: 1``);
* ``hang``: hold the request for ``seconds`` and then answer it normally, as a
  server that stalls would (the client should have given up by then);
* ``html``: answer with an HTML page instead of JSON (status 200 unless
  ``status`` says otherwise), as a captive portal or a proxy error page would;
* ``slow_down``: answer a device-code poll with RFC 8628's ``slow_down``
  error (400), as a server would that counts polls on its own clock: the
  client must then poll 5 seconds slower for the rest of the flow.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["status", "hang", "html", "slow_down"]
Endpoint = Literal["token", "device-authorization"]
ENDPOINTS: tuple[Endpoint, ...] = ("token", "device-authorization")
KINDS: tuple[FaultKind, ...] = ("status", "hang", "html", "slow_down")
MAX_HANG_SECONDS = 120.0


class FaultSpecError(ValueError):
    """The control API was given a fault it cannot inject."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 503
    seconds: float = 0.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind")
        if kind == "status":
            status = spec.get("status", 503)
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise FaultSpecError("'status' must be an HTTP error status (400-599)")
            return cls(kind="status", status=status)
        if kind == "hang":
            seconds = spec.get("seconds")
            if (
                not isinstance(seconds, int | float)
                or isinstance(seconds, bool)
                or not 0 < seconds <= MAX_HANG_SECONDS
            ):
                raise FaultSpecError(f"'seconds' must be a number in (0, {MAX_HANG_SECONDS:g}]")
            return cls(kind="hang", seconds=float(seconds))
        if kind == "html":
            status = spec.get("status", 200)
            if not isinstance(status, int) or not 200 <= status <= 599:
                raise FaultSpecError("'status' must be an HTTP status (200-599)")
            return cls(kind="html", status=status)
        if kind == "slow_down":
            return cls(kind="slow_down", status=400)
        raise FaultSpecError(f"'kind' must be one of {', '.join(KINDS)}")

    def describe(self) -> dict[str, Any]:
        if self.kind == "hang":
            return {"kind": self.kind, "seconds": self.seconds}
        return {"kind": self.kind, "status": self.status}


class FaultQueue:
    """Faults waiting for the next requests of each endpoint, in order."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {endpoint: deque() for endpoint in ENDPOINTS}
        self._lock = threading.Lock()

    def inject(self, endpoint: str, fault: Fault, count: int) -> None:
        if endpoint not in self._queues:
            raise FaultSpecError(f"'endpoint' must be one of {', '.join(ENDPOINTS)}")
        if not 1 <= count <= 1000:
            raise FaultSpecError("'count' must be between 1 and 1000")
        with self._lock:
            self._queues[endpoint].extend([fault] * count)

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None

    def clear(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                endpoint: [fault.describe() for fault in queue]
                for endpoint, queue in self._queues.items()
            }


FAULTS = FaultQueue()
