"""The sandbox as a command: start, public client, auto-approval, restart, clean stop."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from intercom_fsm.sandbox.process import SandboxProcess, SandboxStartError
from tests.sandbox.peers import ScriptedDevice

pytestmark = pytest.mark.timeout(90)


@pytest.mark.asyncio
async def test_a_public_client_is_approved_automatically_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    sandbox = SandboxProcess(state_dir=state_dir, public_client=True, auto_approve=True)
    info = sandbox.start()
    try:
        assert info.client_secret is None
        oauth = state_dir / "oauth.json"
        assert json.loads(oauth.read_text()) == {"client_id": info.client_id, "client_secret": None}
        assert stat.S_IMODE(oauth.stat().st_mode) == 0o600
        assert stat.S_IMODE((state_dir / "sandbox.json").stat().st_mode) == 0o600
        async with aiohttp.ClientSession() as http:
            device = ScriptedDevice(http, info)
            flow = await device.start_flow()
            grant = await device.poll_until_tokens(flow, within=10)
    finally:
        assert sandbox.stop() == 0, sandbox.log_text()
    assert not (state_dir / "sandbox.json").exists()
    assert "intercom sandbox is running" in sandbox.log_text()

    with SandboxProcess(state_dir=state_dir, public_client=True) as restarted:
        assert restarted.info.client_id == info.client_id
        async with aiohttp.ClientSession() as http:
            device = ScriptedDevice(http, restarted.info)
            # The grant lives in the state directory's database.
            socket = await device.connect(grant.device_code, grant.access_token)
            await socket.close()


def test_a_sandbox_that_cannot_start_reports_its_output(tmp_path: Path) -> None:
    sandbox = SandboxProcess(state_dir=tmp_path, extra_args=("--device-interval", "0"))
    with pytest.raises(SandboxStartError, match="device-interval"):
        sandbox.start()


def test_importing_the_package_loads_no_server_stack() -> None:
    probe = (
        "import sys, intercom_fsm, intercom_fsm.sandbox.process, intercom_fsm.sandbox.cli; "
        "print(sorted(m for m in ('django', 'channels', 'daphne', 'twisted', 'oauth2_provider') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_command_line_explains_itself() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "intercom_fsm.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for flag in ("--port", "--state-dir", "--public-client", "--auto-approve", "--test-controls"):
        assert flag in result.stdout
