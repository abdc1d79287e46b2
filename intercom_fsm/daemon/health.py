"""The local monitoring endpoint: ``/healthz`` and ``/metrics``.

Off by default; when on it listens on a loopback address unless the operator
explicitly allows another (see :mod:`intercom_fsm.daemon.operations`).

``/healthz`` answers 200 while the daemon does its job and 503 otherwise,
always with a JSON body naming the state. Unhealthy means: the event loop
lags past its limit, the machine has stopped, or it is stuck: it has been
unavailable to viewers (in any state but Negotiating and Streaming) for longer
than the stuck limit. Those two states may last for days; every other one is
on its way somewhere. The clock runs from the moment the machine left them,
not from the last state change, so a daemon going round Backoff → Authorized →
Connecting → Backoff for ever is stuck too, although no single state lasts.

``/metrics`` is the Prometheus text format of :mod:`intercom_fsm.daemon.metrics`;
only the transition counts and the last failure are gathered as transitions
happen, by :class:`StateTracker` here.

Everything here runs on the daemon's event loop, as the machine does, so a
scrape sees one consistent moment.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest

from intercom_fsm._version import __version__
from intercom_fsm.daemon.notify import LoopMonitor
from intercom_fsm.machine.lifecycle import LifecycleMachine, TransitionRecord
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State

logger = logging.getLogger(__name__)

SETTLED_STATES = frozenset({State.NEGOTIATING, State.STREAMING})
"""States the daemon may rightly stay in for as long as it runs: online and
waiting for viewers, or streaming to them."""


class StateTracker:
    """Follows the machine's transitions: since when it is in its state,
    since when it is unavailable to viewers, how often it went from where to
    where, and why it last went to Backoff.

    ``clock`` measures time in state (monotonic); ``wall_clock`` stamps the
    last failure for humans and Prometheus.
    """

    def __init__(
        self,
        machine: LifecycleMachine,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.state = machine.state
        self.entered_at = clock()
        self.unavailable_since: float | None = (
            None if self.state in SETTLED_STATES else self.entered_at
        )
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.last_failure: str | None = None
        self.last_failure_at: float | None = None

    def observe(self, record: TransitionRecord) -> None:
        """The machine's listener. Only lifecycle state changes count: a
        viewer's session transitions and a state's internal steps (an ICE
        candidate, a camera status) leave the state where it is."""
        if record.session is not None or not record.changed_state:
            return
        self.transitions[(record.source, record.dest)] += 1
        self.state = State(record.dest)
        self.entered_at = self._clock()
        if self.state in SETTLED_STATES:
            self.unavailable_since = None
        elif self.unavailable_since is None:
            self.unavailable_since = self.entered_at
        if self.state is State.BACKOFF:
            self.last_failure = record.reason
            self.last_failure_at = self._wall_clock()

    def seconds_in_state(self) -> float:
        return max(0.0, self._clock() - self.entered_at)

    def seconds_unavailable(self) -> float:
        """Since the machine was last in Negotiating or Streaming (or since it
        was created); 0 while it is in one of them."""
        if self.unavailable_since is None:
            return 0.0
        return max(0.0, self._clock() - self.unavailable_since)


@attrs.frozen
class HealthReport:
    """The ``/healthz`` verdict; its fields are the JSON body."""

    healthy: bool
    status: str
    """``ok``, ``stuck``, ``loop lagging`` or ``stopped``."""
    state: str
    seconds_in_state: float
    seconds_unavailable: float
    viewers: int
    streaming_viewers: int
    held_viewers: int
    """Calls whose media flows while the signaling socket is gone."""
    loop_lag_seconds: float
    stuck_after_seconds: float
    last_failure: str | None
    media: tuple[str, ...] = ()
    """How the camera reaches viewers (source, passthrough, H.264 encoder)."""
    version: str = __version__

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def assess(
    machine: LifecycleMachine,
    tracker: StateTracker,
    monitor: LoopMonitor,
    stuck_after_seconds: float,
) -> HealthReport:
    lag = monitor.current_lag()
    if lag > monitor.lag_limit:
        status = "loop lagging"
    elif tracker.state is State.STOPPED:
        status = "stopped"
    elif tracker.seconds_unavailable() > stuck_after_seconds:
        status = "stuck"
    else:
        status = "ok"
    sessions = machine.sessions
    return HealthReport(
        healthy=status == "ok",
        status=status,
        state=tracker.state.value,
        seconds_in_state=round(tracker.seconds_in_state(), 3),
        seconds_unavailable=round(tracker.seconds_unavailable(), 3),
        viewers=len(sessions),
        streaming_viewers=streaming_viewers(sessions),
        held_viewers=held_viewers(sessions),
        loop_lag_seconds=round(lag, 4),
        stuck_after_seconds=stuck_after_seconds,
        last_failure=tracker.last_failure,
    )


def streaming_viewers(sessions: Mapping[str, str]) -> int:
    return sum(1 for state in sessions.values() if state == SessionState.CONNECTED)


def held_viewers(sessions: Mapping[str, str]) -> int:
    return sum(1 for state in sessions.values() if state == SessionState.HELD)


class HealthServer:
    """The HTTP endpoint. ``port`` 0 picks a free port (see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        report: Callable[[], HealthReport],
        registry: CollectorRegistry,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._report = report
        self._registry = registry
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        # No access log: a scrape every few seconds would flood the journal.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        report = self._report()
        return web.json_response(report.as_json(), status=200 if report.healthy else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
