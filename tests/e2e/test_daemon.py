"""The daemon end to end: a real sandbox backend, the daemon as a subprocess,
viewers made with aiortc."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.e2e.viewer import MediaViewer

FPS = 10


@pytest.mark.asyncio
async def test_device_flow_streaming_viewers_and_recovery(
    sandbox: SandboxProcess, daemon: DaemonProcess, token_file: Path
) -> None:
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert json.loads(token_file.read_text())["device_code"] == device_code

    first = await MediaViewer(sandbox.info, device_code).start()
    try:
        await first.wait_for_frames(5)
        daemon.wait_for_state("Streaming")
        start = time.monotonic()
        await asyncio.sleep(10)
        received = first.frames_between(start, start + 10)
        assert received >= 0.9 * FPS * 10, f"{received} frames in 10 s at {FPS} fps"
        assert first.sizes == {(320, 240)}

        second = await MediaViewer(sandbox.info, device_code).start()
        try:
            await second.wait_for_frames(10)
            await first.wait_for_frames(10)
        finally:
            await second.close()

        # The server drops the socket: the daemon reconnects, viewers offer again.
        negotiating = daemon.wait_for_state("Negotiating")
        sandbox.control.close_device_socket(device_code, code=1011)
        daemon.wait_for_state("Backoff")
        daemon.wait_for_state("Negotiating", after=negotiating)
        await first.offer()
        await first.wait_for_frames(10)

        # The access token expires server-side: refused, refreshed, streaming again.
        negotiating = daemon.wait_for_state("Negotiating")
        sandbox.control.expire_access_tokens(device_code)
        sandbox.control.close_device_socket(device_code, code=1011)
        daemon.wait_for_state("Negotiating", after=negotiating, timeout=30)
        assert ("Connecting", "Authorized", "SocketRejected") in daemon.transitions()
        await first.offer()
        await first.wait_for_frames(10)
    finally:
        await first.close()

    code, seconds = daemon.terminate()
    assert code == 0
    assert seconds < 5


@pytest.mark.asyncio
async def test_restart_reuses_the_stored_grant(
    sandbox: SandboxProcess, daemon: DaemonProcess, token_file: Path, tmp_path: Path
) -> None:
    approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    code, _seconds = daemon.terminate()
    assert code == 0
    again = DaemonProcess(
        daemon_environment(sandbox.info, token_file), tmp_path / "again.log"
    ).start()
    try:
        again.wait_for_state("Negotiating")
        assert again.transitions()[0] == ("Idle", "Authorized", "Started")
        assert not any(t[1] == "AwaitingApproval" for t in again.transitions())
    finally:
        again.stop()
