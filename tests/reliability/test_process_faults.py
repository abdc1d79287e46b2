"""Faults of the machine the daemon runs on: the backend not there at
start-up, SIGKILL at random moments (token writes included), a token
directory that refuses writes, a token file with loose permissions."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.reliability.helpers import (
    harvest_sandbox,
    harvest_token_file,
    running_daemon,
    start_daemon,
    wait_sync,
)
from tests.reliability.test_auth_faults import approve_latest, entries, internal
from tests.requirements import missing

pytestmark = [pytest.mark.timeout(150)]

TOKEN_FIELDS = {"access_token", "refresh_token", "expires_at", "device_code", "version"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    # Access tokens live 2 s and the daemon refreshes half a short token's
    # lifetime before expiry: about one refresh (and one token file write) a
    # second while online.
    with SandboxProcess(device_interval=1, access_token_lifetime=2, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


def test_backend_down_at_start_up_then_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "sandbox"
    first = SandboxProcess(state_dir=state_dir, device_interval=1, test_controls=True)
    info = first.start()
    port = urlsplit(info.http_base_url).port
    assert port is not None
    first.stop()
    token_file = tmp_path / "config" / "tokens.json"

    class Down:
        """Stands for the stopped sandbox: same URLs and client."""

        def __init__(self) -> None:
            self.info = info

    daemon = start_daemon(Down(), token_file, tmp_path / "daemon.log")  # type: ignore[arg-type]
    again = SandboxProcess(
        state_dir=state_dir, device_interval=1, test_controls=True, extra_args=("--port", str(port))
    )
    try:
        daemon.wait_until(
            lambda d: len(entries(d, "Backoff", "AuthTransientError")) >= 3,
            20,
            "three failed device authorizations",
        )
        assert daemon.process is not None and daemon.process.poll() is None
        # Each failure says why, at WARNING.
        assert any(
            r["level"] == "warning" and "cannot reach the device authorization" in r["msg"]
            for r in daemon.records()
        ), daemon.text()[-3000:]
        assert again.start().client_secret == info.client_secret
        approve_latest(again, daemon)
        daemon.wait_for_state("Negotiating", timeout=30)
    finally:
        daemon.stop()
        harvest_token_file(token_file)
        with contextlib.suppress(RuntimeError):  # not started: nothing to harvest
            harvest_sandbox(again)
        again.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def refresh_token_active(sandbox: SandboxProcess, token: str) -> bool:
    connection = sqlite3.connect(sandbox.state_dir / "sandbox.sqlite3")
    try:
        row = connection.execute(
            "SELECT revoked FROM oauth2_provider_refreshtoken WHERE token = ?", (token,)
        ).fetchone()
    finally:
        connection.close()
    return row is not None and row[0] is None


def check_token_file(token_file: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(token_file.read_text())
    assert set(data) == TOKEN_FIELDS, data.keys()
    assert all(
        isinstance(data[k], str) and data[k] for k in TOKEN_FIELDS - {"expires_at", "version"}
    )
    assert isinstance(data["expires_at"], int | float)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    return data


def test_sigkill_at_random_moments_never_breaks_the_token_file(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    rng = random.Random(5)
    with running_daemon(sandbox, token_file, tmp_path / "first.log") as daemon:
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
    check_token_file(token_file)
    kills = resumed = rotated_away = writes_seen = 0
    for round_number in range(8):
        stored = check_token_file(token_file)
        active = refresh_token_active(sandbox, str(stored["refresh_token"]))
        daemon = start_daemon(sandbox, token_file, tmp_path / f"run-{round_number}.log")
        try:
            if active:
                daemon.wait_for_state("Negotiating", timeout=30)
                assert not entries(daemon, "AwaitingApproval"), daemon.transitions()
                assert daemon.transitions()[0] == ("Idle", "Authorized", "Started")
                resumed += 1
            else:
                # Killed after the server rotated the refresh token and before
                # the new one reached the disk: the grant is gone, a new flow.
                rotated_away += 1
                approve_latest(sandbox, daemon)
                daemon.wait_for_state("Negotiating", timeout=30)
            # Let it refresh (and write the file) a few times, reading the
            # file all along: never a partial one.
            deadline = time.monotonic() + rng.uniform(0.5, 3.0)
            while time.monotonic() < deadline:
                check_token_file(token_file)
                time.sleep(0.01)
            writes_seen += len(internal(daemon, "TokensRefreshed"))
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
            kills += 1
        finally:
            daemon.stop()
            harvest_token_file(token_file)
        check_token_file(token_file)
    print(f"kills={kills} resumed={resumed} rotated_away={rotated_away} refreshes={writes_seen}")
    assert kills == 8
    assert writes_seen >= 8, "the kills should fall among frequent token writes"
    # A rotated-away grant can only come from a kill inside the few
    # milliseconds between the server's answer and the rename: rare.
    assert rotated_away <= 2
    # Finally: loose permissions on the file are tightened and reported.
    token_file.chmod(0o644)
    with running_daemon(sandbox, token_file, tmp_path / "last.log") as daemon:
        daemon.wait_until(
            lambda d: "permissions were too open; tightened to 0600" in d.text(), 20, "the report"
        )
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        daemon.wait_for_state("Negotiating", timeout=30)
    # After a clean stop no temp file of an interrupted write is left over
    # (the lock file stays: a lock is held on it, not by its existence).
    left = sorted(p.name for p in token_file.parent.iterdir())
    assert left == sorted([token_file.name, f".{token_file.name}.lock"])


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def test_read_only_token_directory_keeps_the_old_tokens_and_streams_on(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(sandbox, token_file, tmp_path / "daemon.log") as daemon:
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        daemon.wait_until(lambda d: len(internal(d, "TokensRefreshed")) >= 1, 15, "a refresh")
        opened = daemon.text().count("signaling: socket open")
        try:
            chattr("+i", token_file.parent)
            before = token_file.read_bytes()
            failures = daemon.text().count("tokens not saved")
            daemon.wait_until(
                lambda d: d.text().count("tokens not saved") >= failures + 3,
                20,
                "three refused writes",
            )
            assert token_file.read_bytes() == before
            assert daemon.process is not None and daemon.process.poll() is None
            line = next(
                r["msg"] for r in daemon.records() if "tokens not saved" in str(r.get("msg"))
            )
            assert "running on the tokens held" in line
            assert "ermission" in line or "read-only" in line or "not permitted" in line, line
        finally:
            chattr("-i", token_file.parent)
        wait_sync(lambda: token_file.read_bytes() != before, 15, "a write once allowed again")
        check_token_file(token_file)
        assert daemon.text().count("signaling: socket open") == opened
        assert "socket ended" not in daemon.text()


def test_disk_full_keeps_the_old_tokens_and_streams_on(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    directory = tmp_path / "config"
    directory.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        missing("the full-disk test", f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    filler = directory / "filler"
    try:
        token_file = directory / "tokens.json"
        with running_daemon(sandbox, token_file, tmp_path / "daemon.log") as daemon:
            approve_latest(sandbox, daemon)
            daemon.wait_for_state("Negotiating")
            daemon.wait_until(lambda d: len(internal(d, "TokensRefreshed")) >= 1, 15, "a refresh")
            opened = daemon.text().count("signaling: socket open")
            # Fill the file system to the last byte: the next token write
            # gets ENOSPC, as on a full SD card.
            with contextlib.suppress(OSError), filler.open("wb", buffering=0) as fill:
                while True:
                    fill.write(b"\0" * 512)
            before = token_file.read_bytes()
            failures = daemon.text().count("tokens not saved")
            daemon.wait_until(
                lambda d: d.text().count("tokens not saved") >= failures + 3,
                20,
                "three refused writes",
            )
            assert token_file.read_bytes() == before
            check_token_file(token_file)
            line = next(
                r["msg"] for r in daemon.records() if "tokens not saved" in str(r.get("msg"))
            )
            assert "space" in line.lower(), line
            filler.unlink()
            wait_sync(lambda: token_file.read_bytes() != before, 15, "a write once there is room")
            check_token_file(token_file)
            assert daemon.text().count("signaling: socket open") == opened
            kept = {"tokens.json", ".tokens.json.lock"}
            assert not [p for p in directory.iterdir() if p.name not in kept]
    finally:
        subprocess.run(["umount", str(directory)], check=False)
