"""Helpers of the operations tests: a real unix datagram socket standing in
for systemd's notify socket, and a machine walked to Streaming."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State
from intercom_fsm.testing import FakeClock, ResourceLedger, happy_event


@attrs.define
class Received:
    at: float
    """time.monotonic() when the datagram arrived."""
    message: str


class NotifySocket:
    """Binds ``address`` and records every datagram on a thread of its own, so
    that it keeps listening while a test blocks the event loop."""

    def __init__(self, address: str) -> None:
        self.address = address
        bind_to: str | bytes = b"\0" + address[1:].encode() if address[0] == "@" else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(bind_to)
        self._socket.settimeout(0.05)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._running = True
        self._thread = threading.Thread(target=self._listen, name="notify-socket", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while self._running:
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._received.append(Received(time.monotonic(), data.decode()))

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def messages(self) -> list[str]:
        return [entry.message for entry in self.received]

    def count(self, message: str) -> int:
        return sum(1 for entry in self.received if entry.message == message)

    def wait_for(self, message: str, count: int = 1, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while self.count(message) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{message!r} x{count} not received: {self.messages()}")
            time.sleep(0.005)

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._socket.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    # A short directory of its own: a unix socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="notify-") as directory:
        listener = NotifySocket(str(Path(directory) / "notify.sock"))
        try:
            yield listener
        finally:
            listener.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    listener = NotifySocket(f"@intercom-fsm-test-{id(object())}-{time.monotonic_ns()}")
    with contextlib.closing(listener):
        yield listener


def walk_to_streaming(
    machine: LifecycleMachine, ledger: ResourceLedger | None = None
) -> ResourceLedger:
    """Feed what a working world answers until a viewer streams."""
    ledger = ledger or ResourceLedger()
    while (event := happy_event(machine, ledger)) is not None:
        ledger.record(event, machine.handle(event))
    assert machine.state is State.STREAMING
    return ledger


def new_machine(clock: FakeClock | None = None) -> LifecycleMachine:
    return LifecycleMachine(clock=clock or FakeClock(), random=lambda: 0.5)
