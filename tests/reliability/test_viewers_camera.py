"""Viewers that vanish without a hangup, and a camera that goes away and
comes back, while other viewers watch."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.sandbox.options import SANDBOX_INFO_FILE
from intercom_fsm.sandbox.process import SandboxProcess
from tests.camera.conftest import BRIGHT_LUMA, MjpegCamera, luma
from tests.e2e.daemon_process import ROOT
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback
from tests.reliability.helpers import (
    SECRETS,
    device_code_of,
    harvest_sandbox,
    running_daemon,
    wait_async,
)
from tests.reliability.test_auth_faults import approve_latest

restrict_ice_to_loopback()
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


def session_closed(daemon_text: str, session: str) -> bool:
    return f"viewer '{session}': closing its peer" in daemon_text


def live_sessions(records: list[dict[str, object]]) -> list[str]:
    opened = [r["session"] for r in records if r.get("to") == "Connected" and r.get("session")]
    closed = {r["session"] for r in records if r.get("to") == "Closed" and r.get("session")}
    return [str(s) for s in opened if s not in closed]


async def test_a_viewer_that_vanishes_is_reaped_and_the_others_stream_on(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(sandbox, token_file, tmp_path / "daemon.log") as daemon:
        await asyncio.to_thread(approve_latest, sandbox, daemon)
        await asyncio.to_thread(daemon.wait_for_state, "Negotiating")
        code = device_code_of(token_file)
        steady = await MediaViewer(sandbox.info, code).start()
        doomed: list[subprocess.Popen[str]] = []
        try:
            await steady.wait_for_frames(5)
            for how in ("SIGSTOP", "SIGKILL"):
                before = set(live_sessions(daemon.records()))
                process = subprocess.Popen(  # noqa: ASYNC220 (starts at once, never waited on here)
                    [
                        sys.executable,
                        "-m",
                        "tests.reliability.viewer_process",
                        str(sandbox.state_dir / SANDBOX_INFO_FILE),
                        code,
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                doomed.append(process)
                assert process.stdout is not None
                line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
                assert line.strip() == "streaming"
                await wait_async(
                    lambda b=before: len(set(live_sessions(daemon.records())) - b) == 1,  # type: ignore[misc]
                    10,
                    "the new viewer's session",
                )
                (session,) = set(live_sessions(daemon.records())) - before
                # SIGSTOP: gone without a word, its sockets left open (no
                # hangup from the backend, no DTLS close): only ICE consent
                # checks can notice. SIGKILL: the backend notices its socket.
                process.send_signal(getattr(signal, how))
                vanished = time.monotonic()
                await wait_async(
                    lambda s=session: session_closed(daemon.text(), s),  # type: ignore[misc]
                    60,
                    f"the {how} viewer's session reaped",
                )
                reaped_after = time.monotonic() - vanished
                # The steady viewer never stopped receiving.
                window = steady.frames_between(vanished, time.monotonic())
                assert window >= int(0.7 * 10 * reaped_after), (how, window, reaped_after)
                await steady.wait_for_frames(5)
                assert session not in live_sessions(daemon.records())
                reason = next(
                    str(r["msg"])
                    for r in daemon.records()
                    if f"viewer '{session}': closing its peer" in str(r.get("msg"))
                )
                print(f"{how}: reaped after {reaped_after:.1f} s: {reason}")
            await steady.wait_for_frames(10)
            assert len(live_sessions(daemon.records())) == 1
        finally:
            for process in doomed:
                process.kill()
                process.wait(timeout=10)
            await steady.close()


class LumaViewer(MediaViewer):
    """Also keeps each frame's brightness: the offline frame is dark."""

    lumas: list[tuple[float, float]]

    async def _count(self, track: MediaStreamTrack) -> None:
        self.lumas = getattr(self, "lumas", [])
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                now = time.monotonic()
                self.frame_times.append(now)
                self.sizes.add((frame.width, frame.height))
                self.lumas.append((now, luma(frame)))
                self._frame_arrived.set()


async def test_camera_gone_and_back_viewers_see_offline_then_live(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    camera = MjpegCamera(fps=10)
    await camera.start()
    SECRETS.update({"t0ps3cret", "pa55w0rdcam"})
    token_file = tmp_path / "config" / "tokens.json"
    try:
        with running_daemon(
            sandbox,
            token_file,
            tmp_path / "daemon.log",
            VIDEO_SOURCE=camera.url("cam:pa55w0rdcam"),
        ) as daemon:
            await asyncio.to_thread(approve_latest, sandbox, daemon)
            await asyncio.to_thread(daemon.wait_for_state, "Negotiating")
            viewer = LumaViewer(sandbox.info, device_code_of(token_file))
            await viewer.start()
            try:
                await viewer.wait_for_frames(10)
                assert viewer.lumas[-1][1] > BRIGHT_LUMA
                await camera.stop()
                stopped = time.monotonic()
                await wait_async(lambda: "camera offline" in daemon.text(), 15, "camera offline")
                await wait_async(
                    lambda: any(t > stopped and v < BRIGHT_LUMA for t, v in viewer.lumas),
                    15,
                    "the offline frame",
                )
                await asyncio.sleep(2)
                await camera.start()
                restarted = time.monotonic()
                await wait_async(lambda: "camera recovered" in daemon.text(), 20, "recovery")
                await wait_async(
                    lambda: (
                        sum(1 for t, v in viewer.lumas if t > restarted and v > BRIGHT_LUMA) >= 10
                    ),
                    20,
                    "live frames again",
                )
                # Frames never stopped: no gap over 1.5 s between stop and recovery.
                times = [t for t in viewer.frame_times if t >= stopped - 1]
                gaps = [b - a for a, b in itertools.pairwise(times)]
                assert max(gaps) < 1.5, max(gaps)
                assert viewer.sizes == {(320, 240)}
                assert "socket ended" not in daemon.text()
            finally:
                await viewer.close()
    finally:
        await camera.stop()
