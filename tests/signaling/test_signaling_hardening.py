"""The signaling socket against a backend that misbehaves on purpose or by
accident, over real loopback servers: a handshake that redirects elsewhere,
and a backend that stops reading what the device sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from intercom_fsm.events import SocketClosed, SocketOpened
from tests.signaling.conftest import (
    ACCESS_TOKEN,
    DEVICE_CODE,
    ClientFactory,
    ScriptedSignalingServer,
    SilentUpgradeServer,
    signaling_tasks,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SDP = "v=0\r\n" + "a=x-padding:" + "p" * 60_000 + "\r\n"


class RedirectingServer:
    """Answers every request with a redirect to ``target`` + the same path."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.target = ""
        self.base_url = ""
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        return web.Response(status=self.status, headers={"Location": self.target + request.path})


@pytest_asyncio.fixture(params=[307, 301, 308])
async def redirecting(request: pytest.FixtureRequest) -> AsyncIterator[RedirectingServer]:
    server = RedirectingServer(request.param)
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.base_url = f"ws://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_a_redirect_to_another_host_never_becomes_the_signaling_peer(
    redirecting: RedirectingServer,
    signaling_server: ScriptedSignalingServer,
    make_client: ClientFactory,
) -> None:
    # Another origin (another port, plain http, which aiohttp follows) that
    # would accept the device's socket.
    redirecting.target = signaling_server.base_url.replace("ws://", "http://")
    client, log = make_client(redirecting.base_url)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert redirecting.requests == 1
    assert signaling_server.handshakes == []
    assert SocketOpened() not in log.events
    assert isinstance(end, SocketClosed)
    assert f"redirect (HTTP {redirecting.status})" in end.reason
    assert "not followed" in end.reason


async def test_a_redirect_within_the_same_origin_is_refused_too(
    redirecting: RedirectingServer, make_client: ClientFactory
) -> None:
    redirecting.target = redirecting.base_url.replace("ws://", "http://") + "/elsewhere"
    client, log = make_client(redirecting.base_url)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    end = await log.assert_single_terminal()
    assert redirecting.requests == 1
    assert isinstance(end, SocketClosed) and "not followed" in end.reason


async def test_a_backend_that_stops_reading_never_holds_up_a_send(
    dead_after_upgrade: SilentUpgradeServer, make_client: ClientFactory
) -> None:
    # The heartbeat is long: the end must come from the send bound.
    client, log = make_client(dead_after_upgrade.base_url, heartbeat=60, send_timeout=1.0)
    client.open(DEVICE_CODE, ACCESS_TOKEN)
    await log.wait_for(SocketOpened)
    slowest = 0.0
    for _ in range(400):  # 24 MB: far more than the socket buffers hold
        started = time.monotonic()
        await client.send_answer("viewer", SDP)
        slowest = max(slowest, time.monotonic() - started)
        if log.terminals():
            break
        await asyncio.sleep(0)  # let the writer run, as the machine's loop does
    assert slowest < 0.25, f"a send held the caller for {slowest:.2f} s"
    end = await log.assert_single_terminal()
    assert isinstance(end, SocketClosed)
    assert "the server stopped reading" in end.reason
    started = time.monotonic()
    await client.close("test over")
    assert time.monotonic() - started < 0.5
    await eventually(lambda: not signaling_tasks(), 2, "the connection's tasks end")
