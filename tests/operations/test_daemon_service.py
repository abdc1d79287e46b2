"""The daemon as systemd and a monitoring system see it, end to end: a real
sandbox backend, ``intercom-fsm run`` as a subprocess with NOTIFY_SOCKET,
WATCHDOG_USEC and HEALTH_ADDRESS set, a real viewer, and the endpoint scraped
while it streams."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import ROOT, DaemonProcess, daemon_environment
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback
from tests.operations.conftest import NotifySocket

restrict_ice_to_loopback()

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process


@pytest.fixture
def health_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def daemon(
    sandbox: SandboxProcess, notify_socket: NotifySocket, health_port: int, tmp_path: Path
) -> Iterator[DaemonProcess]:
    environ = daemon_environment(
        sandbox.info,
        tmp_path / "state" / "tokens.json",
        NOTIFY_SOCKET=notify_socket.address,
        WATCHDOG_USEC="1000000",
        HEALTH_ADDRESS=f"127.0.0.1:{health_port}",
    )
    environ.pop("WATCHDOG_PID", None)
    process = DaemonProcess(environ, tmp_path / "daemon.log").start()
    yield process
    process.stop()


async def test_systemd_and_a_scraper_follow_a_streaming_daemon(
    sandbox: SandboxProcess,
    daemon: DaemonProcess,
    notify_socket: NotifySocket,
    health_port: int,
    tmp_path: Path,
) -> None:
    base = f"http://127.0.0.1:{health_port}"
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    viewer = await MediaViewer(sandbox.info, device_code).start()
    try:
        await viewer.wait_for_frames(10)
        daemon.wait_for_state("Streaming")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(f"{base}/healthz") as response:
                health = (response.status, await response.json())
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
        drawn = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "intercom_fsm", "diagram", "--live", "--output", "live"],
            cwd=tmp_path,
            env={**daemon.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        await viewer.close()

    assert drawn.returncode == 0, drawn.stderr
    live = (tmp_path / "live" / "lifecycle-Streaming.mmd").read_text()
    assert "Class Streaming s_active" in live
    assert health[0] == 200
    assert (health[1]["state"], health[1]["streaming_viewers"]) == ("Streaming", 1)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("intercom_fsm_state", (("state", "Streaming"),))] == 1
    assert samples[("intercom_fsm_frames_sent_total", ())] >= 10
    # The camera's path to viewers: the shared VP8 encoding, in /metrics and /healthz.
    assert samples[("intercom_fsm_shared_pictures_encoded_total", ())] >= 10
    assert samples[("intercom_fsm_passthrough_viewers", ())] == 0
    assert health[1]["media"][0].startswith("camera: "), health[1]["media"]
    key = ("intercom_fsm_transitions_total", (("from", "AwaitingApproval"), ("to", "Authorized")))
    assert samples[key] == 1

    notify_socket.wait_for("STATUS=streaming to 1 viewer")
    notify_socket.wait_for("WATCHDOG=1", 3)
    code, seconds = daemon.terminate()
    assert (code, seconds < 5) == (0, True)
    await asyncio.to_thread(notify_socket.wait_for, "STOPPING=1")
    messages = notify_socket.messages()
    assert messages.index("READY=1") < messages.index("STATUS=streaming to 1 viewer")
    assert messages.count("READY=1") == 1
