"""The signaling adapter against real WebSocket servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from intercom_fsm.adapters.signaling import SignalingClient, SignalingSettings
from intercom_fsm.events import (
    DEFAULT_SESSION,
    HangupReceived,
    IceCandidate,
    InvalidMessage,
    OfferReceived,
    RemoteIceCandidate,
    SocketClosed,
    SocketOpened,
    SocketRejected,
    UnknownMessage,
)
from tests.signaling.conftest import (
    ACCESS_TOKEN,
    DEVICE_CODE,
    ClientFactory,
    EventLog,
    ScriptedSignalingServer,
    SilentUpgradeServer,
    assert_no_secrets,
    open_and_accept,
)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host"


# --- Handshake ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bearer_header_and_stream_path_reach_the_server(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url + "/")
    await open_and_accept(client, log, signaling_server)
    assert log.events == [SocketOpened()]
    [handshake] = signaling_server.handshakes
    assert handshake.path == f"/ws/live_stream/{DEVICE_CODE}/"
    assert handshake.authorization == f"Bearer {ACCESS_TOKEN}"


@pytest.mark.asyncio
async def test_logs_name_the_endpoint_but_not_the_device_code(
    signaling_server: ScriptedSignalingServer,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, log = make_client(signaling_server.base_url)
    await open_and_accept(client, log, signaling_server)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("intercom_fsm")]
    expected = f"signaling: connecting to {signaling_server.base_url}/ws/live_stream/[redacted]/"
    assert expected in messages
    # The autouse fixture then checks every record for the secrets.


@pytest.mark.asyncio
async def test_device_code_stays_one_path_segment(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    client.open("a/b?c#d", ACCESS_TOKEN)
    await log.wait_for(SocketOpened)
    assert signaling_server.handshakes[0].raw_path == "/ws/live_stream/a%2Fb%3Fc%23d/"


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 403])
async def test_handshake_refused_for_the_token_is_rejected(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory, status: int
) -> None:
    signaling_server.refuse_with = status
    client, log = make_client(signaling_server.base_url)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    assert await log.assert_single_terminal() == SocketRejected(status)
    assert log.events == [SocketRejected(status)]


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [404, 500, 200])
async def test_other_handshake_refusals_are_transient(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory, status: int
) -> None:
    signaling_server.refuse_with = status
    client, log = make_client(signaling_server.base_url)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert f"HTTP {status}" in end.reason
    assert_no_secrets(log.events)


@pytest.mark.asyncio
async def test_connection_refused_is_transient(make_client: ClientFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, log = make_client(f"ws://127.0.0.1:{port}")
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert end.code is None
    assert "cannot connect" in end.reason
    assert_no_secrets(log.events)


@pytest.mark.asyncio
async def test_a_handshake_that_never_comes_times_out(
    never_upgrades: SilentUpgradeServer, make_client: ClientFactory
) -> None:
    client, log = make_client(never_upgrades.base_url, connect_timeout=0.3)
    started = time.monotonic()
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert time.monotonic() - started < 0.3 + 1.0
    assert isinstance(end, SocketClosed)
    assert "within 0.3 s" in end.reason


@pytest.mark.asyncio
async def test_insecure_ws_to_a_remote_host_is_refused_without_connecting(
    http_session: aiohttp.ClientSession,
) -> None:
    attempts: list[str] = []

    async def on_request_start(*_args: object) -> None:
        attempts.append("request")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    log = EventLog()
    async with aiohttp.ClientSession(trace_configs=[trace]) as traced:
        client = SignalingClient(traced, SignalingSettings("ws://192.0.2.10:8000"), log)
        client.open(DEVICE_CODE, ACCESS_TOKEN)
        end = await log.assert_single_terminal()
        await client.close("test over")
    assert isinstance(end, SocketClosed)
    assert "unencrypted" in end.reason
    assert "ALLOW_INSECURE_TRANSPORT" in end.reason
    assert attempts == []


@pytest.mark.asyncio
async def test_insecure_ws_is_tried_when_explicitly_allowed(make_client: ClientFactory) -> None:
    # 192.0.2.0/24 is TEST-NET-1: the attempt fails (or times out) but is made.
    client, log = make_client(
        "ws://192.0.2.10:9", allow_insecure_transport=True, connect_timeout=0.3
    )
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert "unencrypted" not in end.reason


@pytest.mark.asyncio
async def test_a_token_unfit_for_a_header_is_not_sent(make_client: ClientFactory) -> None:
    client, log = make_client("ws://127.0.0.1:9")
    client.open(DEVICE_CODE, "token\r\nX-Injected: 1")
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert "not printable ASCII" in end.reason


@pytest_asyncio.fixture
async def self_signed_wss_url(tmp_path: Path) -> AsyncIterator[str]:
    pytest.importorskip("cryptography")
    from tests.auth.conftest import _write_self_signed_certificate

    cert_path, key_path = _write_self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    server = ScriptedSignalingServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"wss://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_tls_certificates_are_verified(
    self_signed_wss_url: str, make_client: ClientFactory
) -> None:
    client, log = make_client(self_signed_wss_url)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert "TLS failure" in end.reason
    assert_no_secrets(log.events)


# --- Frames -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_frames_become_events_in_order(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    server_socket = await open_and_accept(client, log, signaling_server)
    candidate = {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}
    await server_socket.send_str(json.dumps({"type": "offer", "sdp": SDP, "session": "v1"}))
    await server_socket.send_str(json.dumps({"type": "ice", "candidate": candidate}))
    await server_socket.send_str("{broken")
    await server_socket.send_bytes(b"\x00\x01")
    await server_socket.send_str(json.dumps({"type": "presence", "online": True}))
    await server_socket.send_str(json.dumps({"type": "ice", "candidate": None, "session": "v1"}))
    await server_socket.send_str(json.dumps({"type": "hangup", "session": "v1"}))
    events = await log.wait_count(8)
    assert events[0] == SocketOpened()
    assert events[1] == OfferReceived("v1", SDP)
    assert events[2] == RemoteIceCandidate(DEFAULT_SESSION, IceCandidate(CANDIDATE, "0", 0))
    assert isinstance(events[3], InvalidMessage) and "not valid JSON" in events[3].problem
    assert isinstance(events[4], InvalidMessage) and "binary frame" in events[4].problem
    assert events[5] == UnknownMessage("presence")
    assert events[6] == RemoteIceCandidate("v1", None)
    assert events[7] == HangupReceived("v1")
    assert log.terminals() == []


@pytest.mark.asyncio
async def test_an_oversized_sdp_is_dropped_and_the_socket_stays_up(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url, max_sdp_bytes=100)
    server_socket = await open_and_accept(client, log, signaling_server)
    await server_socket.send_str(json.dumps({"type": "offer", "sdp": SDP + "a=x\r\n" * 30}))
    await server_socket.send_str(json.dumps({"type": "hangup"}))
    events = await log.wait_count(3)
    assert isinstance(events[1], InvalidMessage)
    assert "larger than 100 bytes" in events[1].problem
    assert events[2] == HangupReceived(DEFAULT_SESSION)


@pytest.mark.asyncio
async def test_a_frame_over_the_size_limit_closes_the_socket(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url, max_message_bytes=1024)
    server_socket = await open_and_accept(client, log, signaling_server)
    await server_socket.send_str(json.dumps({"type": "hangup", "session": "ok"}))
    await server_socket.send_str(json.dumps({"type": "offer", "sdp": SDP + "a" * 2000}))
    end = await log.assert_single_terminal()
    assert log.events[:2] == [SocketOpened(), HangupReceived("ok")]
    assert isinstance(end, SocketClosed)
    assert end.code == 1009
    assert "larger than the 1024 bytes limit" in end.reason


# --- Sending ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_answer_and_ice_are_sent_with_the_session_echoed_or_omitted(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    await open_and_accept(client, log, signaling_server)
    await client.send_answer(DEFAULT_SESSION, SDP)
    await client.send_answer("v1", SDP)
    await client.send_ice("v1", IceCandidate(CANDIDATE, "0", 0))
    await client.send_ice(DEFAULT_SESSION, None)
    received = [json.loads(await signaling_server.next_frame()) for _ in range(4)]
    assert received == [
        {"type": "answer", "sdp": SDP},
        {"type": "answer", "sdp": SDP, "session": "v1"},
        {
            "type": "ice",
            "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
            "session": "v1",
        },
        {"type": "ice", "candidate": None},
    ]


@pytest.mark.asyncio
async def test_sending_without_a_connection_is_dropped_quietly(
    signaling_server: ScriptedSignalingServer, make_client: ClientFactory
) -> None:
    client, log = make_client(signaling_server.base_url)
    await client.send_answer(DEFAULT_SESSION, SDP)  # never opened
    server_socket = await open_and_accept(client, log, signaling_server)
    await server_socket.close(code=1011)
    await log.wait_for(SocketClosed)
    await client.send_ice("v", None)  # closed by the server
    await client.close("done")
    await client.send_answer("v", SDP)  # closed by us
    assert signaling_server.received.empty()


def test_settings_are_validated() -> None:
    assert SignalingSettings("wss://example.com/").ws_base_url == "wss://example.com"
    for bad in ({"heartbeat": 0}, {"connect_timeout": -1}, {"max_message_bytes": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SignalingSettings("wss://example.com", **bad)  # type: ignore[arg-type]
