"""Telling systemd how the daemon is doing (``sd_notify``), without libsystemd.

A service of ``Type=notify`` gets ``$NOTIFY_SOCKET``: a unix datagram socket,
a file path or, with a leading ``@``, an abstract name. Each message is one
datagram of ``KEY=value`` lines. The daemon sends ``READY=1`` once the machine
runs, ``STATUS=`` with its state in words, ``WATCHDOG=1`` while the event loop
is healthy and ``STOPPING=1`` when it shuts down. Outside systemd (no
``$NOTIFY_SOCKET``) every send is a no-op.

The watchdog is the reason for :class:`LoopMonitor`: with ``WatchdogSec=`` set,
systemd restarts the service when pings stop. Every part of the daemon runs on
one event loop, so the pings come from that loop and stop by themselves when
it is stuck; a loop that still turns but far too slowly (each turn blocked for
seconds) is caught by measuring how late a periodic tick runs, and the pings
are withheld while that lag is over the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

from intercom_fsm.redact import one_line_text

logger = logging.getLogger(__name__)

MAX_STATUS_CHARS = 200
"""What ``systemctl status`` shows on its Status line."""


class SystemdNotifier:
    """Sends ``sd_notify`` datagrams to ``address`` (None: does nothing).

    Sending never raises and never blocks: systemd not listening, or its
    queue full, costs one lost status message, never the daemon.
    """

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None
        self._socket: socket.socket | None = None
        if address and self._address is None:
            logger.warning("NOTIFY_SOCKET %r is not a unix socket address: not notifying", address)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True when it was sent."""
        if self._address is None:
            return False
        message = "\n".join(assignments).encode("utf-8", errors="replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                self._socket.setblocking(False)
            self._socket.sendto(message, self._address)
        except OSError as error:
            logger.debug("sd_notify %r not sent: %s", assignments, error)
            return False
        return True

    def ready(self) -> bool:
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        # One line (a newline would start another assignment), and a short
        # one: it carries server text such as the user code.
        return self.send("STATUS=" + one_line_text(text, limit=MAX_STATUS_CHARS))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(address: str) -> str | bytes | None:
    if address.startswith("@"):
        # An abstract socket: its name starts with a NUL byte instead of "@".
        return b"\0" + address[1:].encode()
    if address.startswith("/"):
        return address
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, as
    systemd advises. None when no watchdog is asked for, or when
    ``$WATCHDOG_PID`` names another process (the variables were inherited)."""
    usec = environ.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID", "").strip()
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        microseconds = int(usec)
    except ValueError:
        logger.warning("WATCHDOG_USEC %r is not a number: no watchdog pings", usec)
        return None
    if microseconds <= 0:
        return None
    return microseconds / 2 / 1_000_000


class LoopMonitor:
    """How late the event loop runs a tick scheduled every ``period`` seconds.

    ``lag`` is the last tick's delay. The loop is healthy while that delay,
    and the delay of the tick still waiting to run, are within ``lag_limit``:
    the second part lets a caller that runs right after a long stall (before
    the tick had its turn) see the stall.
    """

    def __init__(self, *, period: float = 0.5, lag_limit: float = 5.0) -> None:
        self.period = period
        self.lag_limit = lag_limit
        self.lag = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_tick_due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._schedule(self._loop.time())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # No tick is pending any more: nothing can be overdue.
        self._loop = None

    def current_lag(self) -> float:
        if self._loop is None:
            return self.lag
        overdue = self._loop.time() - self._next_tick_due
        return max(self.lag, overdue)

    def healthy(self) -> bool:
        return self.current_lag() <= self.lag_limit

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._next_tick_due = now + self.period
        self._handle = self._loop.call_at(self._next_tick_due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lag = max(0.0, now - self._next_tick_due)
        self._schedule(now)


class Watchdog:
    """Pings systemd's watchdog every ``interval`` seconds while ``monitor``
    finds the loop healthy. A withheld ping is logged once per stall."""

    def __init__(self, notifier: SystemdNotifier, interval: float, monitor: LoopMonitor) -> None:
        self.notifier = notifier
        self.interval = interval
        self.monitor = monitor
        self.pings = 0
        self.withheld = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="systemd-watchdog")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        stalled = False
        while True:
            lag = self.monitor.current_lag()
            if lag <= self.monitor.lag_limit:
                if stalled:
                    logger.warning("event loop healthy again: watchdog pings resume")
                    stalled = False
                self.notifier.watchdog()
                self.pings += 1
            else:
                self.withheld += 1
                if not stalled:
                    logger.error(
                        "event loop %.1f s late (limit %g s): watchdog ping withheld, "
                        "systemd restarts the service if this lasts",
                        lag,
                        self.monitor.lag_limit,
                    )
                    stalled = True
            await asyncio.sleep(self.interval)
