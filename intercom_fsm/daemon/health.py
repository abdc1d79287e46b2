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

``/metrics`` is the Prometheus text format from a registry of its own (not
prometheus-client's global one, so an embedding product's metrics never
mix with these). Values are read from the machine at scrape time; only the
transition counts and the last failure are gathered as transitions happen,
by :class:`StateTracker`.

Everything here runs on the daemon's event loop, as the machine does, so a
scrape sees one consistent moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from intercom_fsm._version import __version__
from intercom_fsm.daemon.notify import LoopMonitor
from intercom_fsm.machine.lifecycle import LifecycleMachine, TransitionRecord
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State

logger = logging.getLogger(__name__)

SETTLED_STATES = frozenset({State.NEGOTIATING, State.STREAMING})
"""States the daemon may rightly stay in for as long as it runs: online and
waiting for viewers, or streaming to them."""

METRIC_PREFIX = "intercom_fsm"


class CameraCounters(Protocol):
    """What the metrics read from a camera; the camera adapter's
    ``CameraStats`` fits, and so does an embedding product's own."""

    @property
    def frames_delivered(self) -> int: ...

    @property
    def frames_dropped(self) -> int: ...

    @property
    def online(self) -> bool: ...


CameraStatsSource = Callable[[], CameraCounters]


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
    loop_lag_seconds: float
    stuck_after_seconds: float
    last_failure: str | None
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
        streaming_viewers=_streaming(sessions),
        loop_lag_seconds=round(lag, 4),
        stuck_after_seconds=stuck_after_seconds,
        last_failure=tracker.last_failure,
    )


def _streaming(sessions: Mapping[str, str]) -> int:
    return sum(1 for state in sessions.values() if state == SessionState.CONNECTED)


class MachineCollector:
    """The daemon's metrics, read at scrape time (a prometheus-client
    custom collector)."""

    def __init__(
        self,
        machine: LifecycleMachine,
        tracker: StateTracker,
        monitor: LoopMonitor,
        camera_stats: CameraStatsSource | None = None,
        peer_count: Callable[[], int] | None = None,
    ) -> None:
        self._machine = machine
        self._tracker = tracker
        self._monitor = monitor
        self._camera_stats = camera_stats
        self._peer_count = peer_count

    def collect(self) -> Iterable[Metric]:
        yield from self._lifecycle()
        yield from self._counters()
        yield from self._camera()
        yield InfoMetricFamily(f"{METRIC_PREFIX}_build", "Version.", {"version": __version__})
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran its last periodic tick.",
            self._monitor.current_lag(),
        )
        yield from self._resources()

    def _resources(self) -> Iterator[Metric]:
        """What a leak would grow: the loop's tasks and the open peers."""
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped off the loop's thread: not countable
            tasks = None
        if tasks is not None:
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_asyncio_tasks", "Tasks alive on the event loop.", tasks
            )
        if self._peer_count is not None:
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_peer_connections",
                "WebRTC peer connections held by the peer adapter.",
                self._peer_count(),
            )

    def _lifecycle(self) -> Iterator[Metric]:
        tracker = self._tracker
        state = GaugeMetricFamily(
            f"{METRIC_PREFIX}_state", "1 for the current lifecycle state.", labels=["state"]
        )
        for candidate in State:
            state.add_metric([candidate.value], 1.0 if candidate is tracker.state else 0.0)
        yield state
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_state_seconds",
            "Seconds since the machine entered its current state.",
            tracker.seconds_in_state(),
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_unavailable_seconds",
            "Seconds since the machine was last in Negotiating or Streaming; 0 while it is.",
            tracker.seconds_unavailable(),
        )
        transitions = CounterMetricFamily(
            f"{METRIC_PREFIX}_transitions",
            "Lifecycle state changes, by from and to.",
            labels=["from", "to"],
        )
        for (source, dest), count in sorted(tracker.transitions.items()):
            transitions.add_metric([source, dest], count)
        yield transitions
        sessions = self._machine.sessions
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_viewers", "Viewer sessions, in any state.", len(sessions)
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_streaming_viewers",
            "Viewer sessions whose peer is connected.",
            _streaming(sessions),
        )
        if tracker.last_failure is not None and tracker.last_failure_at is not None:
            yield InfoMetricFamily(
                f"{METRIC_PREFIX}_last_error",
                "Why the machine last went to Backoff.",
                {"reason": tracker.last_failure},
            )
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_last_error_timestamp_seconds",
                "When the machine last went to Backoff (seconds since the epoch).",
                tracker.last_failure_at,
            )

    def _counters(self) -> Iterator[Metric]:
        counters = self._machine.counters
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_reconnects",
            "Signaling sockets opened after the first one.",
            max(0, counters.sockets_opened - 1),
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_token_refreshes",
            "Access token refreshes requested.",
            counters.refreshes,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_events", "Events the machine handled.", counters.events
        )
        ignored = CounterMetricFamily(
            f"{METRIC_PREFIX}_ignored_events",
            "Events that meant nothing in the state they arrived in.",
            labels=["state", "event"],
        )
        for key, count in sorted(counters.ignored.items()):
            state, _, event = key.partition(":")
            ignored.add_metric([state, event], count)
        yield ignored

    def _camera(self) -> Iterator[Metric]:
        if self._camera_stats is None:
            return
        stats = self._camera_stats()
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_frames_sent",
            "Frames handed to viewers' tracks, summed over viewers.",
            stats.frames_delivered,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_frames_dropped",
            "Frames a slow viewer never got because a newer one replaced them.",
            stats.frames_dropped,
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_camera_online",
            "1 while the camera source works.",
            1.0 if stats.online else 0.0,
        )


def build_registry(collector: MachineCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    # Memory, CPU and open files of the daemon itself, read from /proc.
    ProcessCollector(namespace=METRIC_PREFIX, registry=registry)
    return registry


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
