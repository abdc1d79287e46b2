"""The signaling adapter against real WebSocket servers on 127.0.0.1: how a
connection ends (the server's close codes, a dropped connection, a silent
server), and ``close()`` or a new ``open()`` while one is open."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from intercom_fsm.adapters.signaling import SignalingClient, SignalingSettings
from intercom_fsm.events import (
    DEFAULT_SESSION,
    Event,
    HangupReceived,
    InvalidMessage,
    SocketClosed,
    SocketOpened,
    SocketRejected,
)
from tests.signaling.conftest import (
    ACCESS_TOKEN,
    DEVICE_CODE,
    TERMINAL_TYPES,
    ClientFactory,
    EventLog,
    ScriptedSignalingServer,
    SilentUpgradeServer,
    assert_no_secrets,
    eventually,
    open_and_accept,
    signaling_tasks,
)

# --- Ends ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [4401, 4403])
async def test_close_codes_for_the_token_are_rejected(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory, code: int
) -> None:
    client, log = make_client(signaling_server.base_url)
    server_socket = await open_and_accept(client, log, signaling_server)
    await server_socket.close(code=code, message=b"token expired")
    assert await log.assert_single_terminal() == SocketRejected(code)
    assert log.events == [SocketOpened(), SocketRejected(code)]


@pytest.mark.asyncio
async def test_a_server_close_is_transient_and_its_reason_is_redacted(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    server_socket = await open_and_accept(client, log, signaling_server)
    await server_socket.close(code=1011, message=f"bad {ACCESS_TOKEN}".encode())
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert end.code == 1011
    assert "closed by the server with code 1011" in end.reason
    assert "[redacted]" in end.reason
    assert_no_secrets(log.events)


@pytest.mark.asyncio
async def test_a_dropped_tcp_connection_is_transient(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    server_socket = await open_and_accept(client, log, signaling_server)
    transport = server_socket._writer.transport if server_socket._writer else None
    assert transport is not None
    transport.abort()
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert end.code == 1006


@pytest.mark.asyncio
async def test_a_silent_server_is_found_dead_by_the_heartbeat(
    dead_after_upgrade: SilentUpgradeServer, make_client: ClientFactory
) -> None:
    heartbeat = 0.2
    client, log = make_client(dead_after_upgrade.base_url, heartbeat=heartbeat)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    await log.wait_for(SocketOpened)
    opened = time.monotonic()
    end = await log.wait_for(TERMINAL_TYPES, within=3 * heartbeat + 1.0)
    assert time.monotonic() - opened <= 3 * heartbeat
    assert isinstance(end, SocketClosed)
    assert end.code == 1006
    assert "no pong" in end.reason
    await log.assert_single_terminal()


@pytest.mark.asyncio
async def test_a_healthy_connection_survives_many_heartbeats(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url, heartbeat=0.05)
    server_socket = await open_and_accept(client, log, signaling_server)
    await asyncio.sleep(0.5)  # ten heartbeats of silence: the time under test
    await server_socket.send_str(json.dumps({"type": "hangup"}))
    await log.wait_count(2)
    assert log.events == [SocketOpened(), HangupReceived(DEFAULT_SESSION)]


@pytest.mark.asyncio
async def test_the_session_total_timeout_does_not_end_the_socket(
    signaling_server: ScriptedSignalingServer,
) -> None:
    # The daemon shares one ClientSession, whose total timeout is meant for
    # HTTP requests, not for a socket that stays open for months.
    log = EventLog()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session:
        client = SignalingClient(session, SignalingSettings(signaling_server.base_url), log)
        server_socket = await open_and_accept(client, log, signaling_server)
        await asyncio.sleep(0.5)  # past the session's total timeout: the time under test
        await server_socket.send_str(json.dumps({"type": "hangup"}))
        await log.wait_count(2)
        assert log.events == [SocketOpened(), HangupReceived(DEFAULT_SESSION)]
        await client.close("test over")


# --- close() and open() while open --------------------------------------------------------


@pytest.mark.asyncio
async def test_close_is_idempotent_and_nothing_is_emitted_after_it(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    server_socket = await open_and_accept(client, log, signaling_server)
    await client.close("shutdown")
    await client.close("shutdown again")
    assert signaling_tasks() == []
    # The server saw a normal close, and nothing it does now reaches the machine.
    await _closed(server_socket)
    assert server_socket.close_code == 1000
    assert log.events == [SocketOpened()]


@pytest.mark.asyncio
async def test_close_while_connecting_returns_at_once_and_emits_nothing(
    never_upgrades: SilentUpgradeServer, make_client: ClientFactory
) -> None:
    client, log = make_client(never_upgrades.base_url, connect_timeout=5.0)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    await eventually(lambda: never_upgrades.connections > 0)
    started = time.monotonic()
    await client.close("shutdown")
    assert time.monotonic() - started < 0.5
    assert signaling_tasks() == []
    assert log.events == []


@pytest.mark.asyncio
async def test_close_against_a_dead_server_is_bounded(
    dead_after_upgrade: SilentUpgradeServer, make_client: ClientFactory
) -> None:
    client, log = make_client(dead_after_upgrade.base_url, heartbeat=30.0)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    await log.wait_for(SocketOpened)
    started = time.monotonic()
    await client.close("shutdown")
    assert time.monotonic() - started < 3.0
    assert log.events == [SocketOpened()]


@pytest.mark.asyncio
async def test_a_new_open_closes_the_old_connection_first(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    first = await open_and_accept(client, log, signaling_server)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    second = await signaling_server.next_socket()
    await _closed(first)
    assert signaling_server.history[:3] == ["handshake 1", "closed 1 with 1000", "handshake 2"]
    await log.wait_count(2)
    # The old socket's end is not reported; the new one works.
    await second.send_str(json.dumps({"type": "hangup"}))
    await log.wait_for(HangupReceived)
    assert log.events == [SocketOpened(), SocketOpened(), HangupReceived(DEFAULT_SESSION)]
    await second.close(code=1011)
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed) and end.code == 1011


@pytest.mark.asyncio
async def test_a_replaced_connection_is_silent_even_with_frames_buffered(
    signaling_server: ScriptedSignalingServer, http_session: aiohttp.ClientSession
) -> None:
    log = EventLog()

    def reopen_on_first_hangup(event: Event) -> None:
        log(event)
        if isinstance(event, HangupReceived) and event.session == "first":
            client.open(DEVICE_CODE, ACCESS_TOKEN)

    settings = SignalingSettings(signaling_server.base_url)
    client = SignalingClient(http_session, settings, reopen_on_first_hangup)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    old = await signaling_server.next_socket()
    # One write, so both frames are read from the same buffer: the old
    # connection's reader would parse the second without waiting.
    frames = [json.dumps({"type": "hangup", "session": name}) for name in ("first", "second")]
    old._writer.transport.write(b"".join(_server_text_frame(f) for f in frames))  # type: ignore[union-attr]
    await signaling_server.next_socket()
    await log.wait_count(3)
    await eventually(lambda: len(signaling_tasks()) == 1)  # the replaced one has ended
    assert log.events == [SocketOpened(), HangupReceived("first"), SocketOpened()]
    await client.close("test over")


@pytest.mark.asyncio
async def test_close_right_after_a_reopen_still_closes_the_first_socket(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    first = await open_and_accept(client, log, signaling_server)
    client.open(DEVICE_CODE, ACCESS_TOKEN)  # its task never gets to run
    await client.close("shutdown")
    await _closed(first)
    assert signaling_tasks() == []
    assert log.events == [SocketOpened()]
    assert len(signaling_server.handshakes) == 1


@pytest.mark.asyncio
async def test_each_open_ends_with_exactly_one_terminal_event(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    for round_number in range(1, 4):
        server_socket = await open_and_accept(client, log, signaling_server)
        await server_socket.close(code=1001)
        await log.wait_count(2 * round_number)
    await eventually(lambda: not signaling_tasks())
    kinds = [type(event) for event in log.events]
    assert kinds == [SocketOpened, SocketClosed] * 3


@pytest.mark.asyncio
async def test_a_failing_event_handler_does_not_stop_the_socket(
    signaling_server: ScriptedSignalingServer, http_session: aiohttp.ClientSession
) -> None:
    seen: list[Event] = []

    def handler(event: Event) -> None:
        seen.append(event)
        if isinstance(event, InvalidMessage):
            raise RuntimeError("handler bug")

    client = SignalingClient(http_session, SignalingSettings(signaling_server.base_url), handler)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    server_socket = await signaling_server.next_socket()
    await server_socket.send_str("{bad")
    await server_socket.send_str(json.dumps({"type": "hangup"}))
    await eventually(lambda: len(seen) == 3)
    assert isinstance(seen[2], HangupReceived)
    await client.close("test over")


# --- helpers ------------------------------------------------------------------------------


def _server_text_frame(text: str) -> bytes:
    """An unmasked, unfragmented text frame as a server sends it (RFC 6455 5.2)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload


async def _closed(server_socket: web.WebSocketResponse) -> None:
    await eventually(lambda: server_socket.closed)
