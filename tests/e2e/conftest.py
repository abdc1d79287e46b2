"""End-to-end fixtures: a real sandbox backend and the daemon as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.loopback import restrict_ice_to_loopback

restrict_ice_to_loopback()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "tokens.json"


@pytest.fixture
def daemon(sandbox: SandboxProcess, token_file: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        daemon_environment(sandbox.info, token_file), tmp_path / "daemon.log"
    ).start()
    yield process
    process.stop()


def approve_pending(sandbox: SandboxProcess, daemon: DaemonProcess) -> str:
    """Approve the daemon's pending device in the sandbox; returns its device code."""
    daemon.wait_for_state("AwaitingApproval")
    pending: list[str] = []

    def has_pending(_daemon: DaemonProcess) -> bool:
        pending[:] = [d.device_code for d in sandbox.control.devices() if d.status == "pending"]
        return bool(pending)

    daemon.wait_until(has_pending, 10, "a pending device in the sandbox")
    sandbox.control.approve(device_code=pending[-1])
    return pending[-1]
