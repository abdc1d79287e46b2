"""Calls outlive the signaling socket (protocol.md 3.3), end to end: the real
sandbox, the daemon as a process, an aiortc viewer streaming through it.

A viewer that streams keeps its frames while the device's socket drops, backs
off and reconnects; afterwards its hangup reaches the device again. Frames a
server library would never send (past the size limit, invalid UTF-8) may end
the socket, as RFC 6455 requires, and no viewer notices.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.e2e.signaling_proxy import SignalingProxy, server_frame
from tests.e2e.viewer import MediaViewer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

FPS = 10
STEADY = 0.9
"""Share of the frame rate a viewer must keep across a socket's loss."""
LONGEST_GAP = 0.6
"""Seconds: at 10 fps, a gap this long means the call was interrupted."""


def session_rows(daemon: DaemonProcess) -> list[tuple[str, str, str, str]]:
    return [
        (r["from"], r["to"], r["event"], r["reason"])
        for r in daemon.records()
        if r.get("session") is not None and "from" in r
    ]


def entries(daemon: DaemonProcess, state: str) -> int:
    return sum(1 for transition in daemon.transitions() if transition[1] == state)


async def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def reconnected(daemon: DaemonProcess, streaming_before: int) -> None:
    await wait_for(
        lambda: entries(daemon, "Streaming") > streaming_before, 20, "Streaming after the drop"
    )


def assert_steady(viewer: MediaViewer, start: float, end: float) -> None:
    frames = viewer.frames_between(start, end)
    assert frames >= STEADY * FPS * (end - start), f"{frames} frames in {end - start:.1f} s"
    gap = viewer.longest_gap(start, end)
    assert gap < LONGEST_GAP, f"the viewer waited {gap:.2f} s for a frame"


@pytest.fixture
def proxied_daemon(
    sandbox: SandboxProcess, token_file: Path, tmp_path: Path
) -> Iterator[tuple[DaemonProcess, SignalingProxy]]:
    upstream = urlsplit(sandbox.info.ws_base_url).port
    assert upstream is not None
    with SignalingProxy(upstream) as proxy:
        environ = daemon_environment(
            sandbox.info, token_file, WEBSOCKET_API_BASE_URL=f"ws://127.0.0.1:{proxy.port}"
        )
        daemon = DaemonProcess(environ, tmp_path / "daemon.log").start()
        try:
            yield daemon, proxy
        finally:
            daemon.stop()


async def test_a_streaming_call_outlives_a_socket_drop_and_hears_its_hangup_after(
    sandbox: SandboxProcess, daemon: DaemonProcess
) -> None:
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    viewer = await MediaViewer(sandbox.info, device_code).start()
    try:
        await viewer.wait_for_frames(10)
        daemon.wait_for_state("Streaming")
        streaming = entries(daemon, "Streaming")
        backoffs = entries(daemon, "Backoff")
        start = time.monotonic()
        sandbox.control.close_device_socket(device_code, code=1011)
        await reconnected(daemon, streaming)
        await asyncio.sleep(2)
        assert entries(daemon, "Backoff") == backoffs + 1
        assert_steady(viewer, start, time.monotonic())
        rows = session_rows(daemon)
        assert ("Connected", "Held", "SignalingLost", "socket gone: media keeps flowing") in rows
        assert (
            "Held",
            "Connected",
            "SignalingRestored",
            "socket back: hangup and ice reach the call",
        ) in rows
        assert not any(to == "Closed" for _from, to, _event, _reason in rows)

        # After the reconnect the viewer's hangup reaches its call again.
        await viewer.leave_signaling()
        await wait_for(
            lambda: any(
                row[:3] == ("Connected", "Closed", "HangupReceived") for row in session_rows(daemon)
            ),
            10,
            "the hangup to close the call",
        )
        await wait_for(
            lambda: viewer.connection_state == "closed", 10, "the viewer's peer to close"
        )
        daemon.wait_for_state("Negotiating", after=1)
    finally:
        await viewer.close()


async def test_frames_past_the_size_limit_or_not_utf8_cost_no_call(
    sandbox: SandboxProcess, proxied_daemon: tuple[DaemonProcess, SignalingProxy]
) -> None:
    daemon, proxy = proxied_daemon
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    viewer = await MediaViewer(sandbox.info, device_code).start()
    try:
        await viewer.wait_for_frames(10)
        daemon.wait_for_state("Streaming")
        offer = b'{"type": "offer", "session": "x", "sdp": "' + b"v" * 1_000_000 + b'"}'
        not_utf8 = b'{"type": "hangup", "session": "\xff\xfe"}'
        for frame in (server_frame(offer), server_frame(not_utf8)):
            streaming = entries(daemon, "Streaming")
            connections = proxy.connections
            start = time.monotonic()
            assert proxy.inject(frame) == 1
            await reconnected(daemon, streaming)
            assert proxy.connections == connections + 1, "the socket should have been ended"
            await asyncio.sleep(2)
            assert_steady(viewer, start, time.monotonic())
        assert viewer.connection_state == "connected"
    finally:
        await viewer.close()


async def test_a_held_call_ends_when_the_socket_stays_gone_past_the_grace_period(
    token_file: Path, tmp_path: Path
) -> None:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as sandbox:
        environ = daemon_environment(
            sandbox.info, token_file, SESSION_ORPHAN_SECONDS="3", BACKOFF_BASE_SECONDS="0.5"
        )
        daemon = DaemonProcess(environ, tmp_path / "daemon.log").start()
        try:
            device_code = approve_pending(sandbox, daemon)
            daemon.wait_for_state("Negotiating")
            viewer = await MediaViewer(sandbox.info, device_code).start()
            try:
                await viewer.wait_for_frames(10)
                daemon.wait_for_state("Streaming")
                lost = time.monotonic()
                sandbox.stop()  # the backend is gone: no reconnect, no hangup
                await wait_for(lambda: viewer.connection_state == "closed", 15, "the call to end")
                ended = time.monotonic() - lost
                assert 3 <= ended < 8, f"the held call ended {ended:.1f} s after the loss"
                assert viewer.frames_between(lost, lost + 2.5) >= STEADY * FPS * 2.5
                moves = [row[:3] for row in session_rows(daemon)]
                assert ("Held", "Closed", "OrphanGraceElapsed") in moves
            finally:
                await viewer.close()
        finally:
            daemon.stop()
