"""packaging/intercom-fsm.service: systemd accepts it as written, and it keeps
what the daemon relies on (notify, watchdog, state directory, camera access)
and its hardening."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from tests.requirements import missing

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "intercom-fsm.service"
EXEC_START = "/opt/intercom-fsm/bin/intercom-fsm"


def directives(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit; a key may appear more than once."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _systemd_analyze_missing() -> NoReturn:
    missing("the unit's verification", "systemd-analyze is missing (Debian package 'systemd')")


@pytest.mark.timeout(60)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        _systemd_analyze_missing()
    text = UNIT.read_text()
    assert f"ExecStart={EXEC_START} " in text
    # verify insists that ExecStart names an executable on this machine; the
    # daemon is installed elsewhere here, so point it at one that exists.
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(f"ExecStart={EXEC_START} ", "ExecStart=/bin/true "))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    # verify exits 0 even for unknown keys or bad values ("…, ignoring"):
    # anything it says about this unit is a failure.
    about_unit = [
        line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line
    ]
    assert result.returncode == 0, result.stderr
    assert about_unit == []


def test_the_daemon_can_talk_to_systemd_and_keep_its_tokens() -> None:
    unit = directives(UNIT.read_text())
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["StateDirectory"] == ["intercom-fsm"]
    assert unit["ConfigurationDirectory"] == ["intercom-fsm"]
    assert "TOKEN_FILE_PATH=%S/intercom-fsm/tokens.json" in unit["Environment"]
    assert unit["EnvironmentFile"] == ["-/etc/intercom-fsm/env"]
    assert unit["ExecStart"] == [f"{EXEC_START} run --log-format json"]


def test_the_camera_stays_reachable() -> None:
    unit = directives(UNIT.read_text())
    assert unit["SupplementaryGroups"] == ["video audio"]
    assert unit["DeviceAllow"] == ["char-video4linux rw", "char-alsa rw"]
    assert "PrivateDevices" not in unit


def test_hardening() -> None:
    unit = directives(UNIT.read_text())
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
    }.items():
        assert unit.get(key) == [value], key
    # WebRTC's DTLS needs writable+executable memory (see the unit's comment).
    assert "MemoryDenyWriteExecute" not in unit
