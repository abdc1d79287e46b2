"""Operations around the daemon's real runtime, wired as the daemon wires
them: systemd hears READY, the state and STOPPING over a real socket while
the endpoint is scraped during the run. The adapters are in-process fakes
that answer like a working backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from intercom_fsm import events as ev
from intercom_fsm.config import HealthAddress
from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.daemon.operations import OperationsSettings, start_operations
from intercom_fsm.daemon.runtime import Adapters, Runtime
from intercom_fsm.effects import ShowUserCode
from intercom_fsm.events import IceCandidate, PeerId, SessionId, StoredTokens
from intercom_fsm.machine.lifecycle import LifecycleMachine
from tests.operations.conftest import NotifySocket

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class WorkingAuth:
    async def request_device_code(self) -> ev.DeviceCodeIssued:
        raise AssertionError("stored tokens are fresh: no device flow")

    async def poll_token(self, device_code: str) -> ev.TokensGranted:
        raise AssertionError("no device flow")

    async def refresh(self, refresh_token: str) -> ev.TokensRefreshed:
        raise AssertionError("no refresh")


class MemoryTokens:
    def save(self, tokens: StoredTokens) -> None:
        return None

    def clear(self) -> bool:
        return False


class AcceptingSignaling:
    def __init__(self, post: Callable[[ev.Event], None]) -> None:
        self._post = post

    def open(self, device_code: str, access_token: str) -> None:
        asyncio.get_running_loop().call_soon(self._post, ev.SocketOpened())

    async def close(self, reason: str) -> None:
        return None

    async def send_answer(self, session: SessionId, sdp: str) -> None:
        return None

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None:
        return None


class ConnectingPeers:
    def __init__(self, post: Callable[[ev.Event], None]) -> None:
        self._post = post

    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None:
        self._post(ev.AnswerReady(session, peer, "v=0 answer"))
        self._post(ev.PeerConnected(session, peer))

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None:
        return None

    async def close(self, peer: PeerId) -> None:
        return None

    async def close_all(self) -> None:
        return None


class IdleCamera:
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


def no_prompt(effect: ShowUserCode) -> None:
    return None


async def scrape_state(http: aiohttp.ClientSession, port: int | None) -> str:
    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
        body = await response.json()
    return str(body["state"])


async def wait_for_state(http: aiohttp.ClientSession, port: int | None, state: str) -> None:
    deadline = time.monotonic() + 10
    while (seen := await scrape_state(http, port)) != state:
        assert time.monotonic() < deadline, f"still {seen}, not {state}"
        await asyncio.sleep(0.01)


async def test_a_daemon_run_seen_by_systemd_and_by_a_scraper(notify_socket: NotifySocket) -> None:
    inbox = Inbox()
    adapters = Adapters(
        auth=WorkingAuth(),
        tokens=MemoryTokens(),
        signaling=AcceptingSignaling(inbox.post),
        peers=ConnectingPeers(inbox.post),
        camera=IdleCamera(),
        prompt=no_prompt,
    )
    machine = LifecycleMachine()
    runtime = Runtime(machine, inbox, adapters)
    settings = OperationsSettings(
        health_address=HealthAddress("127.0.0.1", 0),
        notify_socket=notify_socket.address,
        watchdog_interval=0.05,
    )
    operations = await start_operations(machine, settings=settings)
    tokens = StoredTokens("access", "refresh", time.time() + 3600, "device")
    run = asyncio.create_task(runtime.run(ev.Started(tokens)))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await wait_for_state(http, operations.health_port, "Negotiating")
            inbox.post(ev.OfferReceived("viewer-1", "v=0 offer"))
            await wait_for_state(http, operations.health_port, "Streaming")
            async with http.get(f"http://127.0.0.1:{operations.health_port}/metrics") as response:
                text = await response.text()
        inbox.post(ev.ShutdownRequested("test over"))
        await asyncio.wait_for(run, timeout=10)
    finally:
        run.cancel()
        await operations.stop()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("intercom_fsm_state", (("state", "Streaming"),))] == 1
    assert samples[("intercom_fsm_viewers", ())] == 1
    key = ("intercom_fsm_transitions_total", (("from", "Connecting"), ("to", "Negotiating")))
    assert samples[key] == 1

    await asyncio.to_thread(notify_socket.wait_for, "STOPPING=1")
    messages = notify_socket.messages()
    assert messages.index("READY=1") < messages.index("STATUS=streaming to 1 viewer")
    assert messages.index("STATUS=streaming to 1 viewer") < messages.index("STATUS=stopped")
    assert messages[-1] == "STOPPING=1"
    assert "WATCHDOG=1" in messages
