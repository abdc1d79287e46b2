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
``STOPPING=1`` when it reaches Stopped. :func:`fetch_live_status` is the
client side, for ``intercom-fsm status``.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

import attrs

from intercom_fsm.config import (
    ENVIRONMENT_VARIABLES,
    ConfigError,
    is_loopback_host,
    parse_bool,
    parse_seconds,
)
from intercom_fsm.daemon.health import (
    CameraStatsSource,
    HealthReport,
    HealthServer,
    MachineCollector,
    StateTracker,
    assess,
    build_registry,
)
from intercom_fsm.daemon.notify import LoopMonitor, SystemdNotifier, Watchdog, watchdog_interval
from intercom_fsm.machine.lifecycle import LifecycleMachine, TransitionRecord
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State

logger = logging.getLogger(__name__)

DEFAULT_STUCK_SECONDS = 300.0
DEFAULT_LOOP_LAG_LIMIT = 5.0
"""Seconds the event loop may run late before the daemon counts as unhealthy.
A live video stream is already broken long before this."""

ENVIRONMENT_ROWS: tuple[tuple[str, str | None, str], ...] = tuple(
    (variable.name, variable.default, variable.meaning)
    for variable in ENVIRONMENT_VARIABLES
    if variable.name.startswith("HEALTH_")
)
"""This module's rows of the configuration table (kept in ``config``)."""


@attrs.frozen
class HealthAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"


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
    def from_environ(cls, environ: Mapping[str, str]) -> OperationsSettings:
        """Raises :class:`ConfigError` naming the variable with a wrong value."""

        def env(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        allow_remote_value = env("HEALTH_ALLOW_REMOTE")
        allow_remote = (
            parse_bool("HEALTH_ALLOW_REMOTE", allow_remote_value) if allow_remote_value else False
        )
        address_value = env("HEALTH_ADDRESS")
        stuck_value = env("HEALTH_STUCK_SECONDS")
        return cls(
            health_address=(
                parse_health_address("HEALTH_ADDRESS", address_value, allow_remote)
                if address_value
                else None
            ),
            stuck_seconds=(
                parse_seconds("HEALTH_STUCK_SECONDS", stuck_value, 0, 7 * 86400, False)
                if stuck_value
                else DEFAULT_STUCK_SECONDS
            ),
            notify_socket=env("NOTIFY_SOCKET"),
            watchdog_interval=watchdog_interval(environ),
        )


def parse_health_address(name: str, value: str, allow_remote: bool) -> HealthAddress:
    """``host:port``, an IPv6 host in brackets (``[::1]:9108``)."""
    host, separator, port_text = value.rpartition(":")
    if not separator or not host:
        raise ConfigError(name, "must be host:port, e.g. 127.0.0.1:9108")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ConfigError(name, f"port must be a number (got {port_text[:10]!r})") from None
    if not 1 <= port <= 65535:
        raise ConfigError(name, f"port must be between 1 and 65535 (got {port})")
    if not allow_remote and not is_loopback_host(host):
        raise ConfigError(
            name,
            "must be a loopback address: the endpoint has no authentication; "
            "set HEALTH_ALLOW_REMOTE=1 to listen elsewhere",
        )
    return HealthAddress(host, port)


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
            return f"waiting to retry after a failure ({last_failure or 'unknown'})"
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.machine = machine
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
        return assess(self.machine, self.tracker, self.monitor, self.settings.stuck_seconds)

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
    clock: Callable[[], float] = time.monotonic,
) -> Operations:
    """Subscribe to ``machine``, start the watchdog and the endpoint as the
    settings ask; ``await operations.stop()`` when the daemon ends.
    ``clock`` (monotonic seconds) measures the time in a state."""
    operations = Operations(
        machine, settings, camera_stats=camera_stats, peer_count=peer_count, clock=clock
    )
    await operations.start()
    return operations


# --- The client side: ``intercom-fsm status`` ----------------------------------------------


@attrs.frozen
class LiveStatus:
    """What a running daemon's ``/healthz`` said, or why it could not be asked."""

    reachable: bool
    healthy: bool = False
    state: str | None = None
    seconds_in_state: float | None = None
    viewers: int | None = None
    status: str | None = None
    problem: str | None = None

    def describe(self) -> str:
        """One line for ``intercom-fsm status``."""
        if not self.reachable:
            return f"unknown ({self.problem})"
        seconds = self.seconds_in_state or 0.0
        verdict = "healthy" if self.healthy else f"UNHEALTHY: {self.status}"
        return f"{self.state} for {_duration(seconds)}, {self.viewers} viewer(s), {verdict}"


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
            status=str(report["status"]),
        )
    except (ValueError, KeyError, TypeError):
        return LiveStatus(reachable=False, problem=f"{url} did not answer with a health report")


def describe_live_daemon(environ: Mapping[str, str], timeout: float = 2.0) -> str:
    """The running daemon's state in one line, for ``intercom-fsm status``:
    asked from the endpoint that ``HEALTH_ADDRESS`` in ``environ`` names.
    Never raises."""
    try:
        settings = OperationsSettings.from_environ(environ)
    except ConfigError as error:
        return f"unknown ({error})"
    if settings.health_address is None:
        return "unknown (the health endpoint is off: set HEALTH_ADDRESS)"
    return fetch_live_status(settings.health_address, timeout).describe()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
