"""WebSocket servers on 127.0.0.1 for the signaling adapter's tests.

:class:`ScriptedSignalingServer` is a real aiohttp WebSocket endpoint: it
records each handshake (path and Authorization header), hands each accepted
socket to the test, and collects the text frames the device sends.
:class:`SilentUpgradeServer` is a raw TCP server that answers the upgrade
(or not) and then never reads or writes again: a dead connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web

from intercom_fsm.adapters.signaling import SignalingClient, SignalingSettings
from intercom_fsm.events import Event, SocketClosed, SocketOpened, SocketRejected

ACCESS_TOKEN = "access-token-SIGNAL-7777-abcd"
DEVICE_CODE = "device-code-SIGNAL-8888-wxyz"
SECRETS = (ACCESS_TOKEN, DEVICE_CODE)
CONNECTION_TASK = re.compile(r"signaling-[0-9]+")
STEP = 2.0
"""Upper bound for anything that should happen at once on loopback."""

TERMINAL_TYPES = (SocketClosed, SocketRejected)


@attrs.define
class Handshake:
    path: str
    raw_path: str
    authorization: str | None


@attrs.define
class ScriptedSignalingServer:
    base_url: str = ""
    refuse_with: int | None = None
    """When set, every handshake is answered with this HTTP status."""
    handshakes: list[Handshake] = attrs.field(factory=list)
    sockets: asyncio.Queue[web.WebSocketResponse] = attrs.field(factory=asyncio.Queue)
    received: asyncio.Queue[str] = attrs.field(factory=asyncio.Queue)
    history: list[str] = attrs.field(factory=list)
    """Handshakes and closes in the order the server saw them."""
    released: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append(
            Handshake(request.path, request.raw_path, request.headers.get("Authorization"))
        )
        self.history.append(f"handshake {len(self.handshakes)}")
        if self.refuse_with is not None:
            return web.Response(status=self.refuse_with)
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.put_nowait(socket)
        async for message in socket:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.received.put_nowait(message.data)
        self.history.append(f"closed {len(self.handshakes)} with {socket.close_code}")
        return socket

    async def next_socket(self) -> web.WebSocketResponse:
        return await asyncio.wait_for(self.sockets.get(), STEP)

    async def next_frame(self) -> str:
        return await asyncio.wait_for(self.received.get(), STEP)


@pytest_asyncio.fixture
async def signaling_server() -> AsyncIterator[ScriptedSignalingServer]:
    server = ScriptedSignalingServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    # No access log: the test server's own log would show the device code,
    # and the tests search every record for it.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.base_url = f"ws://{host}:{port}"
    try:
        yield server
    finally:
        server.released.set()
        await runner.cleanup()


@attrs.define
class SilentUpgradeServer:
    """Accepts TCP; optionally completes the WebSocket upgrade; then silence."""

    upgrade: bool = True
    base_url: str = ""
    connections: int = 0
    _writers: list[asyncio.StreamWriter] = attrs.field(factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        request = await reader.readuntil(b"\r\n\r\n")
        if not self.upgrade:
            return
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        # From here on nothing is read or written: pings go unanswered.

    def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()


async def _silent_server(upgrade: bool) -> AsyncIterator[SilentUpgradeServer]:
    server = SilentUpgradeServer(upgrade=upgrade)
    tcp = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    server.base_url = f"ws://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.close()
        tcp.close()
        await tcp.wait_closed()


@pytest_asyncio.fixture
async def dead_after_upgrade() -> AsyncIterator[SilentUpgradeServer]:
    async for server in _silent_server(upgrade=True):
        yield server


@pytest_asyncio.fixture
async def never_upgrades() -> AsyncIterator[SilentUpgradeServer]:
    async for server in _silent_server(upgrade=False):
        yield server


@attrs.define
class EventLog:
    """Every event the client emitted, with a way to wait for the next ones."""

    events: list[Event] = attrs.field(factory=list)
    _arrived: asyncio.Event = attrs.field(factory=asyncio.Event)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, kind: type[Any] | tuple[type[Any], ...], within: float = STEP) -> Any:
        """The first event of ``kind`` (already seen or still to come)."""
        async with asyncio.timeout(within):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_count(self, count: int, within: float = STEP) -> list[Event]:
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.events)

    def terminals(self) -> list[Event]:
        return [event for event in self.events if isinstance(event, TERMINAL_TYPES)]

    async def assert_single_terminal(self) -> Event:
        """Exactly one terminal event, the last one, still so once every
        connection's task has ended (after that nothing can emit)."""
        await self.wait_for(TERMINAL_TYPES)
        await eventually(lambda: not signaling_tasks())
        terminals = self.terminals()
        assert len(terminals) == 1, self.events
        assert self.events[-1] is terminals[0], self.events
        return terminals[0]


def signaling_tasks() -> list[asyncio.Task[object]]:
    """The client's connection tasks still alive (each is named ``signaling-N``;
    its reader and writer, which end before it, ``signaling-N-read`` and
    ``signaling-N-write``)."""
    return [task for task in asyncio.all_tasks() if CONNECTION_TASK.fullmatch(task.get_name())]


async def eventually(condition: Callable[[], bool], within: float = STEP) -> None:
    """Wait until ``condition()`` holds; fail after ``within`` seconds."""
    interval = 0.01
    for _ in range(int(within / interval)):
        if condition():
            return
        await asyncio.sleep(interval)
    assert condition(), f"still false after {within} s"


@pytest_asyncio.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


ClientFactory = Callable[..., tuple[SignalingClient, EventLog]]


@pytest_asyncio.fixture
async def make_client(http_session: aiohttp.ClientSession) -> AsyncIterator[ClientFactory]:
    """Builds clients (closed at teardown); settings as keyword overrides."""
    clients: list[SignalingClient] = []

    def build(base_url: str, **overrides: Any) -> tuple[SignalingClient, EventLog]:
        settings: dict[str, Any] = {"ws_base_url": base_url, "connect_timeout": STEP}
        settings.update(overrides)
        log = EventLog()
        client = SignalingClient(http_session, SignalingSettings(**settings), log)
        clients.append(client)
        return client, log

    yield build
    for client in clients:
        await client.close("test over")


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Every test of this package: no log record holds the token or device code."""
    caplog.set_level(logging.DEBUG)
    yield
    records = [
        *caplog.get_records("setup"),
        *caplog.get_records("call"),
        *caplog.records,  # this fixture is torn down last: the other teardowns' records
    ]
    for record in records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} logged by {record.name}: {text}"


def assert_no_secrets(events: list[Event]) -> None:
    for event in events:
        for secret in SECRETS:
            assert secret not in repr(event)
            assert secret not in getattr(event, "reason", "")


async def open_and_accept(
    client: SignalingClient, log: EventLog, server: ScriptedSignalingServer
) -> web.WebSocketResponse:
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    await log.wait_for(SocketOpened)
    return await server.next_socket()
