"""After 50 socket drop/reconnect cycles and 50 viewer join/leave cycles the
daemon's open file descriptors and threads are back to their baseline, and
every viewer session it opened was reaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


async def test_no_fd_or_thread_leak_after_50_reconnects_and_50_viewers(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(
        sandbox,
        token_file,
        tmp_path / "daemon.log",
        BACKOFF_BASE_SECONDS="0.05",
        BACKOFF_CAP_SECONDS="0.2",
        LOG_LEVEL="INFO",
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
        await reconnect_cycles(sandbox, daemon, code, 50)
        after_reconnects = await settle(pid)
        await viewer_cycles(sandbox, daemon, code, 50)
        after_viewers = await settle(pid)
        report = (
            f"baseline {baseline.describe()}; after 50 reconnects "
            f"{after_reconnects.describe()}; after 50 viewers {after_viewers.describe()}"
        )
        print(report)
        for footprint in (after_reconnects, after_viewers):
            assert footprint.fds <= baseline.fds + FD_SLACK, report
            assert footprint.threads <= baseline.threads + THREAD_SLACK, report
        assert isinstance(after_viewers, Footprint)
