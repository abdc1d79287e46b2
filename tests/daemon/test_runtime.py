"""The runtime around the real machine, with in-process adapters (the real
token store where the file matters): what an adapter's failure does to the
daemon, what a flood of problems does to the log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from intercom_fsm import events as ev
from intercom_fsm.adapters.token_store import TokenStore
from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.daemon.runtime import Adapters, Runtime
from intercom_fsm.effects import ShowUserCode
from intercom_fsm.events import IceCandidate, PeerId, SessionId, StoredTokens
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

FRESH = StoredTokens("access", "refresh", time.time() + 3600, "device")
EXPIRED = StoredTokens("access", "refresh", time.time() - 60, "device")


class ScriptedAuth:
    """Refreshes are rejected (the grant is gone); a new flow waits for a person."""

    async def request_device_code(self) -> ev.DeviceCodeIssued:
        return ev.DeviceCodeIssued("new-device-code", "WDJB-MJHT", "https://e.example/d", 600, 5)

    async def poll_token(self, device_code: str) -> ev.AuthorizationPending:
        return ev.AuthorizationPending()

    async def refresh(self, refresh_token: str) -> ev.RefreshRejected:
        return ev.RefreshRejected()


class MemoryTokens:
    def save(self, tokens: StoredTokens) -> None:
        return None

    def clear(self) -> bool:
        return False


class Signaling:
    def __init__(self, post: Callable[[ev.Event], None]) -> None:
        self._post = post
        self.closed: list[str] = []

    def open(self, device_code: str, access_token: str) -> None:
        asyncio.get_running_loop().call_soon(self._post, ev.SocketOpened())

    async def close(self, reason: str) -> None:
        self.closed.append(reason)

    async def send_answer(self, session: SessionId, sdp: str) -> None:
        return None

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None:
        return None


class Peers:
    def __init__(self, *, close_all_fails: bool = False) -> None:
        self._close_all_fails = close_all_fails

    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None:
        return None

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None:
        return None

    async def close(self, peer: PeerId) -> None:
        return None

    async def close_all(self) -> None:
        if self._close_all_fails:
            raise RuntimeError("a peer connection failed to close")


class Camera:
    def __init__(self) -> None:
        self.closed = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self.closed += 1


def no_prompt(effect: ShowUserCode) -> None:
    return None


def runtime_with(
    inbox: Inbox, *, tokens: object = None, peers: Peers | None = None, **options: object
) -> tuple[Runtime, Signaling, Camera]:
    signaling, camera = Signaling(inbox.post), Camera()
    adapters = Adapters(
        auth=ScriptedAuth(),
        tokens=tokens or MemoryTokens(),  # type: ignore[arg-type]
        signaling=signaling,
        peers=peers or Peers(),
        camera=camera,
        prompt=no_prompt,
    )
    return Runtime(LifecycleMachine(), inbox, adapters, **options), signaling, camera  # type: ignore[arg-type]


async def stop(runtime: Runtime, run: asyncio.Task[None]) -> None:
    runtime.inbox.post(ev.ShutdownRequested("test over"))
    await asyncio.wait_for(run, timeout=10)


async def test_a_token_file_that_cannot_be_removed_is_reported_and_the_daemon_runs_on(
    tmp_path: Path,
) -> None:
    # A directory where the file should be: unlinking it fails, even as root.
    token_path = tmp_path / "tokens.json"
    (token_path / "not-a-file").mkdir(parents=True)
    inbox = Inbox()
    runtime, _signaling, _camera = runtime_with(inbox, tokens=TokenStore(token_path))
    run = asyncio.create_task(runtime.run(ev.Started(EXPIRED)))
    try:
        # invalid_grant → DiscardTokens (which fails) → a new device flow.
        await eventually(
            lambda: run.done() or runtime.machine.state is State.AWAITING_APPROVAL,
            10,
            "the new device flow",
        )
        assert not run.done(), run.exception()
        await eventually(lambda: runtime.store_failures == 1, 5, "TokenStoreFailed posted")
        assert runtime.machine.context.tokens is None
    finally:
        if not run.done():
            await stop(runtime, run)
    assert run.exception() is None


async def test_every_release_at_shutdown_stands_alone() -> None:
    inbox = Inbox()
    runtime, signaling, camera = runtime_with(inbox, peers=Peers(close_all_fails=True))
    run = asyncio.create_task(runtime.run(ev.Started(FRESH)))
    await eventually(lambda: runtime.machine.state is State.NEGOTIATING, 10, "online")
    await stop(runtime, run)
    assert run.exception() is None
    assert "shutdown" in signaling.closed
    assert camera.closed >= 1


async def test_a_flood_of_one_problem_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    runtime, _signaling, _camera = runtime_with(inbox)
    run = asyncio.create_task(runtime.run(ev.Started(FRESH)))
    try:
        await eventually(lambda: runtime.machine.state is State.NEGOTIATING, 10, "online")
        with caplog.at_level(logging.WARNING, logger="intercom_fsm.daemon.runtime"):
            for index in range(100):
                await runtime.step(ev.InvalidMessage(f"frame {index} is not valid JSON"))
        dropped = [r.getMessage() for r in caplog.records if "dropped signaling" in r.getMessage()]
        # The rest are counted, and the count goes out with the next line of
        # this kind after the interval (tests/daemon/test_log_limit.py).
        assert dropped == ["dropped signaling message: frame 0 is not valid JSON"]
    finally:
        await stop(runtime, run)


class FlowEndingAuth(ScriptedAuth):
    """The server ends every flow at the first poll (RFC 8628 section 3.5)."""

    def __init__(self) -> None:
        self.device_codes = 0
        self.polled: list[str] = []

    async def request_device_code(self) -> ev.DeviceCodeIssued:
        self.device_codes += 1
        return ev.DeviceCodeIssued(f"code-{self.device_codes}", "WDJB-MJHT", "https://e/d", 600, 1)

    async def poll_token(self, device_code: str) -> ev.DeviceFlowFailed:  # type: ignore[override]
        self.polled.append(device_code)
        return ev.DeviceFlowFailed("invalid_grant", "unknown device code")


class RejectingAuth(ScriptedAuth):
    async def refresh(self, refresh_token: str) -> ev.ClientRejected:  # type: ignore[override]
        return ev.ClientRejected(ev.AuthOperation.REFRESH, "invalid_client")


async def test_a_flow_the_server_ends_is_followed_by_a_new_one() -> None:
    inbox = Inbox()
    auth = FlowEndingAuth()
    runtime, _signaling, _camera = runtime_with(inbox)
    runtime.adapters.auth = auth
    run = asyncio.create_task(runtime.run(ev.Started(None)))
    try:
        await eventually(lambda: auth.device_codes >= 2, 5, "a second device code")
        # RFC 8628 section 3.5: the ended flow's code is not polled again.
        assert auth.polled.count("code-1") == 1, auth.polled
        assert runtime.machine.state is not State.STOPPED
    finally:
        await stop(runtime, run)


async def test_a_rejected_client_waits_in_backoff_and_keeps_the_grant() -> None:
    inbox = Inbox()
    runtime, _signaling, _camera = runtime_with(inbox)
    runtime.adapters.auth = RejectingAuth()
    run = asyncio.create_task(runtime.run(ev.Started(EXPIRED)))
    try:
        await eventually(lambda: runtime.machine.state is State.BACKOFF, 3, "backoff")
        assert runtime.machine.context.tokens is not None
    finally:
        await stop(runtime, run)
