"""After 50 socket drop/reconnect cycles and 50 viewer join/leave cycles the
daemon's open file descriptors, threads, asyncio tasks and peer connections
are back to their baseline, and every viewer session it opened was reaped.
Tasks and peers are read from the daemon's own /metrics."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from intercom_fsm.sandbox.process import SandboxProcess
from tests.loopback import restrict_ice_to_loopback
from tests.reliability.cycles import Footprint, reconnect_cycles, settle, viewer_cycles
from tests.reliability.helpers import device_code_of, harvest_sandbox, running_daemon
from tests.reliability.test_auth_faults import approve_latest

restrict_ice_to_loopback()
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

# Slack: the default executor (token file writes, DNS) and aiortc's encoder
# threads are created lazily and idle ones linger; the warm-up creates them
# and a couple more may appear on a busy cycle. A leak grows with the number
# of cycles (50 here), far beyond this.
FD_SLACK = 6
THREAD_SLACK = 4
TASK_SLACK = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


async def test_no_fd_or_thread_leak_after_50_reconnects_and_50_viewers(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    port = free_port()
    with running_daemon(
        sandbox,
        token_file,
        tmp_path / "daemon.log",
        BACKOFF_BASE_SECONDS="0.05",
        BACKOFF_CAP_SECONDS="0.2",
        LOG_LEVEL="INFO",
        HEALTH_ADDRESS=f"127.0.0.1:{port}",
    ) as daemon:
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        assert daemon.process is not None
        pid = daemon.process.pid
        code = device_code_of(token_file)
        # Warm-up: one of each, so lazily created pools exist.
        await reconnect_cycles(sandbox, daemon, code, 2)
        await viewer_cycles(sandbox, daemon, code, 2)
        baseline = await settle(pid)
        base_metrics = scrape(port)
        await reconnect_cycles(sandbox, daemon, code, 50)
        after_reconnects = await settle(pid)
        reconnect_metrics = scrape(port)
        await viewer_cycles(sandbox, daemon, code, 50)
        after_viewers = await settle(pid)
        viewer_metrics = scrape(port)
        report = (
            f"baseline {baseline.describe()}; after 50 reconnects "
            f"{after_reconnects.describe()}; after 50 viewers {after_viewers.describe()}"
        )
        print(report)
        for footprint in (after_reconnects, after_viewers):
            assert footprint.fds <= baseline.fds + FD_SLACK, report
            assert footprint.threads <= baseline.threads + THREAD_SLACK, report
        tasks = "intercom_fsm_asyncio_tasks"
        peers = "intercom_fsm_peer_connections"
        print({name: (base_metrics[name], reconnect_metrics[name], viewer_metrics[name])
               for name in (tasks, peers)})  # fmt: skip
        for metrics in (reconnect_metrics, viewer_metrics):
            assert metrics[tasks] <= base_metrics[tasks] + TASK_SLACK, metrics
            assert metrics[peers] == 0, metrics
        assert isinstance(after_viewers, Footprint)
