"""Running the daemon as a service: systemd notifications, the watchdog, and
the optional monitoring endpoint, started and stopped together.

The daemon wires it with one call around the runtime (the settings are read
before the loop starts, so that a wrong value exits with code 2)::

    settings = OperationsSettings.from_environ(os.environ)
    ...
    operations = await start_operations(machine, camera_stats=..., settings=settings)
    try:
        await runtime.run(...)
    finally:
        await operations.stop()

Everything follows the machine through its transition listener: ``READY=1``
when it leaves Idle, ``STATUS=`` when the words for its state change,
``STOPPING=1`` when it reaches Stopped. The client side, for ``intercom-fsm
status``, is :mod:`intercom_fsm.daemon.status_client`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import attrs

from intercom_fsm.config import HealthAddress, HealthSettings, default_value, load_health_settings
from intercom_fsm.daemon.health import HealthReport, HealthServer, StateTracker, assess
from intercom_fsm.daemon.metrics import CameraStatsSource, MachineCollector, build_registry
from intercom_fsm.daemon.notify import LoopMonitor, SystemdNotifier, Watchdog, watchdog_interval
from intercom_fsm.machine.lifecycle import LifecycleMachine, TransitionRecord
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State

logger = logging.getLogger(__name__)

DEFAULT_STUCK_SECONDS: float = default_value("HEALTH_STUCK_SECONDS")
DEFAULT_LOOP_LAG_LIMIT = 5.0
"""Seconds the event loop may run late before the daemon counts as unhealthy.
A live video stream is already broken long before this."""


@attrs.frozen
class OperationsSettings:
    health_address: HealthAddress | None = None
    """Where ``/healthz`` and ``/metrics`` listen; None: no endpoint."""
    stuck_seconds: float = DEFAULT_STUCK_SECONDS
    notify_socket: str | None = None
    """``$NOTIFY_SOCKET``: where systemd listens; None outside systemd."""
    watchdog_interval: float | None = None
    """Seconds between ``WATCHDOG=1`` pings; None: systemd asked for none."""
    loop_lag_limit: float = DEFAULT_LOOP_LAG_LIMIT
    loop_tick: float = 0.5
    """How often the event loop's lag is measured."""

    @classmethod
    def from_health(cls, health: HealthSettings, environ: Mapping[str, str]) -> OperationsSettings:
        """The configured endpoint, and systemd's own variables from ``environ``."""
        return cls(
            health_address=health.address,
            stuck_seconds=health.stuck_seconds,
            notify_socket=environ.get("NOTIFY_SOCKET", "").strip() or None,
            watchdog_interval=watchdog_interval(environ),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> OperationsSettings:
        """Raises :class:`~intercom_fsm.config.ConfigError` naming the variable
        with a wrong value."""
        return cls.from_health(load_health_settings(environ), environ)


def status_words(machine: LifecycleMachine, last_failure: str | None = None) -> str:
    """The machine's state for ``systemctl status``, in words; ``last_failure``
    is why it last went to Backoff."""
    state = machine.state
    match state:
        case State.IDLE:
            return "starting"
        case State.UNAUTHORIZED:
            return "not authorized: requesting a device code"
        case State.AWAITING_APPROVAL:
            flow = machine.context.flow
            code = f" for code {flow.user_code}" if flow is not None else ""
            return f"waiting for a person to approve this device{code}"
        case State.AUTHORIZED:
            return "authorized: refreshing the access token"
        case State.CONNECTING:
            return "connecting to the signaling server"
        case State.NEGOTIATING:
            viewers = len(machine.sessions)
            return f"online: setting up {_count(viewers)}" if viewers else "online: no viewer"
        case State.STREAMING:
            streaming = sum(
                1 for session in machine.sessions.values() if session == SessionState.CONNECTED
            )
            return f"streaming to {_count(streaming)}"
        case State.BACKOFF:
            held = sum(1 for session in machine.sessions.values() if session == SessionState.HELD)
            calls = f"; {_count(held)} still streaming" if held else ""
            return f"waiting to retry after a failure ({last_failure or 'unknown'}){calls}"
        case State.STOPPED:
            return "stopped"


def _count(viewers: int) -> str:
    return f"{viewers} viewer{'s' if viewers != 1 else ''}"


class Operations:
    """Notifications, watchdog and endpoint for one machine. Build it with
    :func:`start_operations`."""

    def __init__(
        self,
        machine: LifecycleMachine,
        settings: OperationsSettings,
        *,
        camera_stats: CameraStatsSource | None = None,
        peer_count: Callable[[], int] | None = None,
        media_lines: Callable[[], Sequence[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``media_lines`` describes the camera's path to viewers for
        ``/healthz`` and ``intercom-fsm status``."""
        self.machine = machine
        self._media_lines = media_lines
        self._peer_count = peer_count
        self.settings = settings
        self.notifier = SystemdNotifier(settings.notify_socket)
        self.monitor = LoopMonitor(period=settings.loop_tick, lag_limit=settings.loop_lag_limit)
        self.tracker = StateTracker(machine, clock=clock)
        self.watchdog: Watchdog | None = None
        self.server: HealthServer | None = None
        self._camera_stats = camera_stats
        self._ready_sent = False
        self._stopping_sent = False
        self._last_status: str | None = None
        self._stopped = False

    async def start(self) -> None:
        self.monitor.start()
        self.machine.add_listener(self._on_transition)
        if self.settings.health_address is not None:
            await self._start_server(self.settings.health_address)
        if self.notifier.enabled and self.settings.watchdog_interval is not None:
            self.watchdog = Watchdog(self.notifier, self.settings.watchdog_interval, self.monitor)
            self.watchdog.start()
        self._follow_machine()

    async def stop(self) -> None:
        """Send ``STOPPING=1`` (if not yet sent) and release everything.
        Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._notify_stopping()
        if self.watchdog is not None:
            await self.watchdog.stop()
        if self.server is not None:
            await self.server.stop()
        self.monitor.stop()
        self.notifier.close()

    def report(self) -> HealthReport:
        report = assess(self.machine, self.tracker, self.monitor, self.settings.stuck_seconds)
        if self._media_lines is None:
            return report
        return attrs.evolve(report, media=tuple(self._media_lines()))

    @property
    def health_port(self) -> int | None:
        """The endpoint's port (the one picked when the settings said 0)."""
        return self.server.port if self.server is not None else None

    async def _start_server(self, address: HealthAddress) -> None:
        collector = MachineCollector(
            self.machine, self.tracker, self.monitor, self._camera_stats, self._peer_count
        )
        server = HealthServer(address.host, address.port, self.report, build_registry(collector))
        try:
            await server.start()
        except OSError as error:
            # Monitoring must not take the camera down: run without it.
            logger.error("health endpoint not started on %s: %s", address, error)
            return
        self.server = server
        logger.info("health endpoint on http://%s/healthz and /metrics", address)

    def _on_transition(self, record: TransitionRecord) -> None:
        self.tracker.observe(record)
        self._follow_machine()

    def _follow_machine(self) -> None:
        state = self.machine.state
        if not self._ready_sent and state is not State.IDLE:
            self._ready_sent = True
            self.notifier.ready()
        words = status_words(self.machine, self.tracker.last_failure)
        if words != self._last_status:
            self._last_status = words
            self.notifier.status(words)
        if state is State.STOPPED:
            self._notify_stopping()

    def _notify_stopping(self) -> None:
        if not self._stopping_sent:
            self._stopping_sent = True
            self.notifier.stopping()


async def start_operations(
    machine: LifecycleMachine,
    *,
    settings: OperationsSettings,
    camera_stats: CameraStatsSource | None = None,
    peer_count: Callable[[], int] | None = None,
    media_lines: Callable[[], Sequence[str]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Operations:
    """Subscribe to ``machine``, start the watchdog and the endpoint as the
    settings ask; ``await operations.stop()`` when the daemon ends.
    ``clock`` (monotonic seconds) measures the time in a state."""
    operations = Operations(
        machine,
        settings,
        camera_stats=camera_stats,
        peer_count=peer_count,
        media_lines=media_lines,
        clock=clock,
    )
    await operations.start()
    return operations
