"""One process at a time on a token file: a second daemon, or a login beside
a running daemon, says which process holds it and exits 4."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom_fsm.daemon.exit_codes import EXIT_LOCKED
from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess, daemon_environment

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("second", ["run", "login", "logout"])
def test_a_second_process_on_the_token_file_says_who_holds_it_and_exits(
    sandbox: SandboxProcess, daemon: DaemonProcess, token_file: Path, tmp_path: Path, second: str
) -> None:
    daemon.wait_for_state("AwaitingApproval")
    assert daemon.process is not None
    other = DaemonProcess(
        daemon_environment(sandbox.info, token_file), tmp_path / f"{second}.log", argv=(second,)
    ).start()
    try:
        assert other.process is not None
        assert other.process.wait(timeout=30) == EXIT_LOCKED
    finally:
        other.stop()
    said = other.text()
    assert f"process {daemon.process.pid} already uses the token file {token_file}" in said
    assert daemon.process.poll() is None, "the first daemon runs on"
