"""The client side of the monitoring endpoint, for ``intercom-fsm status`` and
``intercom-fsm diagram --live``: ask a running daemon's ``/healthz`` what it
is doing. Plain ``urllib``: the command must start quickly and the answer is
a few hundred bytes from loopback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping

import attrs

from intercom_fsm.config import ConfigError, HealthAddress, load_health_settings


@attrs.frozen
class LiveStatus:
    """What a running daemon's ``/healthz`` said, or why it could not be asked."""

    reachable: bool
    healthy: bool = False
    state: str | None = None
    seconds_in_state: float | None = None
    viewers: int | None = None
    held_viewers: int = 0
    media: tuple[str, ...] = ()
    status: str | None = None
    problem: str | None = None

    def describe(self) -> str:
        """A line for ``intercom-fsm status``, then the camera's path, indented."""
        if not self.reachable:
            return f"unknown ({self.problem})"
        seconds = self.seconds_in_state or 0.0
        verdict = "healthy" if self.healthy else f"UNHEALTHY: {self.status}"
        held = f" ({self.held_viewers} held through a reconnect)" if self.held_viewers else ""
        line = f"{self.state} for {_duration(seconds)}, {self.viewers} viewer(s){held}, {verdict}"
        return "\n".join([line, *(f"  {media}" for media in self.media)])


def fetch_live_status(address: HealthAddress, timeout: float = 2.0) -> LiveStatus:
    """Ask the daemon listening on ``address``; never raises."""
    url = f"{address.url}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:  # 503 still carries the report
        body = error.read()
        error.close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return LiveStatus(reachable=False, problem=f"no daemon answers on {address}: {reason}")
    try:
        report = json.loads(body)
        return LiveStatus(
            reachable=True,
            healthy=bool(report["healthy"]),
            state=str(report["state"]),
            seconds_in_state=float(report["seconds_in_state"]),
            viewers=int(report["viewers"]),
            held_viewers=int(report.get("held_viewers", 0)),
            media=tuple(str(line) for line in report.get("media", ())),
            status=str(report["status"]),
        )
    except (ValueError, KeyError, TypeError):
        return LiveStatus(reachable=False, problem=f"{url} did not answer with a health report")


def describe_live_daemon(environ: Mapping[str, str], timeout: float = 2.0) -> str:
    """The running daemon's state in one line, for ``intercom-fsm status``:
    asked from the endpoint that ``HEALTH_ADDRESS`` in ``environ`` names.
    Never raises."""
    try:
        address = load_health_settings(environ).address
    except ConfigError as error:
        return f"unknown ({error})"
    if address is None:
        return "unknown (the health endpoint is off: set HEALTH_ADDRESS)"
    return fetch_live_status(address, timeout).describe()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
