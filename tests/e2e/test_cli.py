"""login, status and logout against the sandbox, as a person runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import ROOT, DaemonProcess, daemon_environment


def cli(environ: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercom_fsm", *argv],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_login_status_logout(sandbox: SandboxProcess, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    environ = daemon_environment(sandbox.info, token_file)
    before = cli(environ, "status")
    assert before.returncode == 1
    assert "authorized:      no" in before.stdout

    login = DaemonProcess(environ, tmp_path / "login.log", argv=("login",)).start()
    try:
        approve_pending(sandbox, login)
        assert login.process is not None
        assert login.process.wait(timeout=30) == 0
    finally:
        login.stop()
    assert "authorized: tokens stored" in login.text()
    assert token_file.exists()

    after = cli(environ, "status")
    assert after.returncode == 0, after.stderr
    assert "authorized:      yes" in after.stdout
    assert sandbox.info.http_base_url in after.stdout
    tokens = token_file.read_text()
    assert not any(part in after.stdout for part in tokens.split('"') if len(part) > 20)

    out = cli(environ, "logout")
    assert out.returncode == 0
    assert not token_file.exists()
    assert cli(environ, "status").returncode == 1


def test_a_wrong_setting_exits_2_naming_it(sandbox: SandboxProcess, tmp_path: Path) -> None:
    environ = daemon_environment(sandbox.info, tmp_path / "tokens.json", VIDEO_FPS="fast")
    result = cli(environ, "run")
    assert result.returncode == 2
    assert "VIDEO_FPS" in result.stderr
