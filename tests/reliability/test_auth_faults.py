"""Faults of the OAuth side, injected into the real sandbox while the daemon
runs as a subprocess: token endpoint errors during polling and during
refresh, the device flow's slow_down / access_denied / expired answers, a
revoked refresh token, and the signaling socket closed by the server."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback
from tests.reliability.helpers import (
    device_code_of,
    harvest_sandbox,
    running_daemon,
    timestamps,
    wait_sync,
)

restrict_ice_to_loopback()
pytestmark = [pytest.mark.timeout(120)]

USER_CODE = re.compile(r"user_code=([A-Za-z0-9-]+)")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


def user_codes(daemon: DaemonProcess) -> list[str]:
    return USER_CODE.findall(daemon.text())


def approve_latest(sandbox: SandboxProcess, daemon: DaemonProcess, flows: int = 1) -> str:
    """Approve the daemon's ``flows``-th device flow (by its printed user code)."""
    daemon.wait_until(lambda d: len(set(user_codes(d))) >= flows, 20, f"user code #{flows}")
    code = list(dict.fromkeys(user_codes(daemon)))[flows - 1]
    return sandbox.control.approve(user_code=code)


def entries(daemon: DaemonProcess, to: str, event: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in daemon.records()
        if r.get("to") == to
        and r.get("from") != to
        and r.get("session") is None
        and (event is None or r.get("event") == event)
    ]


def internal(daemon: DaemonProcess, event: str) -> list[dict[str, Any]]:
    return [
        r
        for r in daemon.records()
        if r.get("event") == event and r.get("from") == r.get("to") and r.get("session") is None
    ]


def backoff_durations(daemon: DaemonProcess) -> list[float]:
    """Seconds spent in each Backoff, from the JSON log's timestamps."""
    times = timestamps(daemon, lambda r: r.get("session") is None and "from" in r)
    records = [r for r in daemon.records() if r.get("session") is None and "from" in r]
    durations = []
    entered: float | None = None
    for record, at in zip(records, times, strict=True):
        if record["to"] == "Backoff" and record["from"] != "Backoff":
            entered = at
        elif record["from"] == "Backoff" and record["to"] != "Backoff" and entered is not None:
            durations.append(at - entered)
            entered = None
    return durations


FAULTS: list[dict[str, Any]] = [
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 429},
    {"kind": "html"},
    {"kind": "hang", "seconds": 1.5},
]


FAULT_REPORTS = (
    "token endpoint answered 500 (server error)",
    "token endpoint answered 503 (server error)",
    "token endpoint answered 429 (rate limited)",
    "token endpoint answered 200 with a text/html body instead of JSON",
    "no answer from the token endpoint within 1 s",
)


def assert_faults_reported(daemon: DaemonProcess, operation: str) -> None:
    """Each fault has its own WARNING line naming the operation and the cause."""
    warnings = [r["msg"] for r in daemon.records() if r.get("level") == "warning"]
    for report in FAULT_REPORTS:
        assert any(m.startswith(f"{operation}: {report}") for m in warnings), (report, warnings)


def inject_all(sandbox: SandboxProcess) -> None:
    for fault in FAULTS:
        spec = dict(fault)
        sandbox.control.inject_fault(spec.pop("kind"), **spec)


def test_token_endpoint_faults_while_polling_keep_the_flow(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(
        sandbox,
        token_file,
        tmp_path / "daemon.log",
        BACKOFF_BASE_SECONDS="0.5",
        BACKOFF_CAP_SECONDS="4",
        HTTP_TIMEOUT_SECONDS="1",
    ) as daemon:
        daemon.wait_for_state("AwaitingApproval")
        daemon.wait_until(
            lambda d: len(internal(d, "AuthorizationPending")) >= 1, 10, "a first poll"
        )
        inject_all(sandbox)
        # A poll that got no answer in time polls less often (RFC 8628 3.5);
        # every other fault costs one backoff.
        backing_off = len(FAULTS) - 1
        daemon.wait_until(
            lambda d: (
                len(entries(d, "Backoff", "AuthTransientError")) >= backing_off
                and len(slower_polls(d)) == 1
            ),
            40,
            "every fault to cost one backoff, the hang a slower poll",
        )
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating", timeout=30)
        # One flow only: the faults never started a new one.
        assert len(entries(daemon, "AwaitingApproval", "DeviceCodeIssued")) == 1
        assert len(set(user_codes(daemon))) == 1
        failures = entries(daemon, "Backoff", "AuthTransientError")
        assert all(r["from"] == "AwaitingApproval" for r in failures)
        check_backoff(backoff_durations(daemon)[:backing_off], base=0.5, cap=4, count=backing_off)
        assert_faults_reported(daemon, "token poll")
        text = daemon.text()
        assert "Traceback" not in text


def slower_polls(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [
        r
        for r in internal(daemon, "AuthTransientError")
        if r.get("reason") == "poll timed out: poll less often"
    ]


def check_backoff(
    durations: list[float], base: float, cap: float, count: int = len(FAULTS)
) -> None:
    """Full jitter: each delay in [0, min(cap, base * 2**n)]; together they
    must add up to real waiting (the chance that four full-jitter delays with
    these ceilings sum under 0.5 s is about 1 in 1500)."""
    assert len(durations) >= count, durations
    for attempt, duration in enumerate(durations):
        assert duration <= min(cap, base * 2**attempt) + 0.3, (attempt, durations)
    assert sum(durations) >= 0.5, durations


def test_token_endpoint_faults_during_refresh_keep_the_tokens(tmp_path: Path) -> None:
    # Access tokens live 4 s and the daemon refreshes at half a short token's
    # lifetime before expiry: a refresh every 2 s while online.
    with SandboxProcess(device_interval=1, access_token_lifetime=4, test_controls=True) as sandbox:
        token_file = tmp_path / "config" / "tokens.json"
        try:
            with running_daemon(
                sandbox, token_file, tmp_path / "daemon.log", HTTP_TIMEOUT_SECONDS="1"
            ) as daemon:
                approve_latest(sandbox, daemon)
                daemon.wait_for_state("Negotiating")
                daemon.wait_until(
                    lambda d: len(internal(d, "TokensRefreshed")) >= 1, 15, "a first refresh"
                )
                opened = daemon.text().count("signaling: socket open")
                inject_all(sandbox)
                daemon.wait_until(
                    lambda d: len(internal(d, "AuthTransientError")) >= 1, 15, "a failed refresh"
                )
                before = token_file.read_bytes()
                for count in range(2, len(FAULTS) + 1):
                    daemon.wait_until(
                        lambda d, c=count: len(internal(d, "AuthTransientError")) >= c,  # type: ignore[misc]
                        15,
                        f"failed refresh #{count}",
                    )
                    assert token_file.read_bytes() == before, "a failed refresh touched the file"
                failed_at = timestamps(
                    daemon,
                    lambda r: r.get("event") == "AuthTransientError" and r.get("session") is None,
                )
                # Then a refresh succeeds and is stored.
                wait_sync(lambda: token_file.read_bytes() != before, 15, "a stored refresh")
                stored = json.loads(token_file.read_text())
                assert json.loads(before)["refresh_token"] != stored["refresh_token"]
                # All along the socket stayed up and the daemon online.
                assert daemon.text().count("signaling: socket open") == opened
                assert "socket ended" not in daemon.text()
                gaps = [b - a for a, b in itertools.pairwise(failed_at)]
                # Each retry waits a backoff (<= 1 s cap) plus the failed request
                # (<= 1 s timeout for the hang); never a tight loop nor a stall.
                assert all(gap <= 2.6 for gap in gaps), gaps
                assert_faults_reported(daemon, "token refresh")
                assert "Traceback" not in daemon.text()
        finally:
            harvest_sandbox(sandbox)


def test_slow_down_adds_five_seconds_to_the_poll_interval(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    with running_daemon(sandbox, tmp_path / "config" / "tokens.json", tmp_path / "d.log") as daemon:
        daemon.wait_for_state("AwaitingApproval")
        daemon.wait_until(lambda d: len(internal(d, "AuthorizationPending")) >= 3, 15, "3 polls")
        sandbox.control.inject_fault("slow_down")
        daemon.wait_until(lambda d: len(internal(d, "SlowDown")) >= 1, 10, "slow_down")
        slowed_at = timestamps(daemon, lambda r: r.get("event") == "SlowDown")[0]
        pending_before = len([t for t in timestamps(daemon, _pending) if t < slowed_at])
        daemon.wait_until(
            lambda d: len(internal(d, "AuthorizationPending")) >= pending_before + 2,
            20,
            "two polls after slow_down",
        )
        times = timestamps(daemon, _pending)
        before = [b - a for a, b in itertools.pairwise(times[:pending_before])]
        after_times = [slowed_at, *[t for t in times if t > slowed_at][:2]]
        after = [b - a for a, b in itertools.pairwise(after_times)]
        assert all(0.8 <= gap <= 2.0 for gap in before), before
        # The interval grew from 1 s to 6 s (each gap: interval + a round trip).
        assert all(5.8 <= gap <= 7.5 for gap in after), after
        assert min(after) - max(before) >= 4.0, (before, after)


def refreshes(daemon: DaemonProcess) -> int:
    return sum(1 for r in daemon.records() if r.get("event") == "TokensRefreshed")


def _pending(record: dict[str, Any]) -> bool:
    return record.get("event") == "AuthorizationPending" and record.get("from") == record.get("to")


def test_access_denied_is_reported_and_a_new_flow_follows_the_backoff(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    with running_daemon(sandbox, tmp_path / "config" / "tokens.json", tmp_path / "d.log") as daemon:
        daemon.wait_until(lambda d: len(user_codes(d)) >= 1, 20, "a user code")
        sandbox.control.deny(user_code=user_codes(daemon)[0])
        daemon.wait_until(lambda d: "authorization was denied" in d.text(), 15, "the denial")
        daemon.wait_until(lambda d: len(set(user_codes(d))) >= 2, 20, "a second flow")
        sequence = [
            (r["from"], r["to"], r["event"])
            for r in daemon.records()
            if "from" in r and r["from"] != r["to"] and r.get("session") is None
        ]
        denied = sequence.index(("AwaitingApproval", "Backoff", "AccessDenied"))
        assert sequence[denied + 1] == ("Backoff", "Unauthorized", "BackoffElapsed")
        assert sequence[denied + 2] == ("Unauthorized", "AwaitingApproval", "DeviceCodeIssued")
        approve_latest(sandbox, daemon, flows=2)
        daemon.wait_for_state("Negotiating")


def test_an_expired_device_code_starts_a_new_flow(tmp_path: Path) -> None:
    with SandboxProcess(device_interval=1, device_expires_in=3, test_controls=True) as sandbox:
        try:
            with running_daemon(
                sandbox, tmp_path / "config" / "tokens.json", tmp_path / "d.log"
            ) as daemon:
                daemon.wait_until(lambda d: len(set(user_codes(d))) >= 2, 20, "a second flow")
                expiries = [
                    r for r in entries(daemon, "Unauthorized") if r["from"] == "AwaitingApproval"
                ]
                assert expiries, daemon.transitions()
                assert "expired" in expiries[0]["reason"]
                approve_latest(sandbox, daemon, flows=len(set(user_codes(daemon))))
                daemon.wait_for_state("Negotiating")
        finally:
            harvest_sandbox(sandbox)


@pytest.mark.asyncio
async def test_a_revoked_refresh_token_leads_to_a_new_approved_flow(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(sandbox, token_file, tmp_path / "d.log") as daemon:
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        old_code = device_code_of(token_file)
        control = sandbox.control
        assert control.revoke_refresh_token(old_code) >= 1
        control.expire_access_tokens(old_code)
        control.close_device_socket(old_code, code=4401)
        await asyncio.to_thread(
            daemon.wait_until, lambda d: len(set(user_codes(d))) >= 2, 30, "a new flow"
        )
        assert any(r.get("event") == "RefreshRejected" for r in daemon.records())
        await asyncio.to_thread(approve_latest, sandbox, daemon, 2)
        await asyncio.to_thread(daemon.wait_for_state, "Negotiating", 30, 1)
        new_code = device_code_of(token_file)
        assert new_code != old_code
        viewer = await MediaViewer(sandbox.info, new_code).start()
        try:
            await viewer.wait_for_frames(10)
        finally:
            await viewer.close()


@pytest.mark.asyncio
async def test_socket_closed_by_the_server_again_and_again(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(sandbox, token_file, tmp_path / "d.log") as daemon:
        approve_latest(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        code = device_code_of(token_file)
        control = sandbox.control
        viewer = await MediaViewer(sandbox.info, code).start()
        try:
            await viewer.wait_for_frames(5)
            for close_code in (1011, 4401, 4403, 1011, 4401, 4403):
                negotiating = daemon.wait_for_state("Negotiating")
                rejected = len(entries(daemon, "Authorized", "SocketRejected"))
                assert await asyncio.to_thread(control.close_device_socket, code, close_code)
                await asyncio.to_thread(daemon.wait_for_state, "Negotiating", 20, negotiating)
                if close_code in (4401, 4403):
                    assert len(entries(daemon, "Authorized", "SocketRejected")) == rejected + 1
                await viewer.offer()
                await viewer.wait_for_frames(5)
            # Handshake refused (401): the access token is expired server-side.
            negotiating = daemon.wait_for_state("Negotiating")
            refreshed = refreshes(daemon)
            refused = daemon.text().count("socket ended: access token refused")
            await asyncio.to_thread(control.expire_access_tokens, code)
            await asyncio.to_thread(control.close_device_socket, code, 1011)
            await asyncio.to_thread(daemon.wait_for_state, "Negotiating", 30, negotiating)
            # The sandbox refuses the handshake of an expired token with 403.
            assert daemon.text().count("socket ended: access token refused") == refused + 1
            assert refreshes(daemon) > refreshed
            await viewer.offer()
            await viewer.wait_for_frames(10)
        finally:
            await viewer.close()


def test_short_lived_access_tokens_still_connect(tmp_path: Path) -> None:
    with SandboxProcess(device_interval=1, access_token_lifetime=45, test_controls=True) as sandbox:
        try:
            with running_daemon(
                sandbox, tmp_path / "config" / "tokens.json", tmp_path / "d.log"
            ) as daemon:
                approve_latest(sandbox, daemon)
                daemon.wait_for_state("Negotiating", timeout=10)
                # The eventless row took it: the new token counts as fresh.
                assert any(
                    (r.get("from"), r.get("to"), r.get("reason"))
                    == ("Authorized", "Connecting", "access token fresh")
                    for r in daemon.records()
                ), daemon.transitions()
        finally:
            harvest_sandbox(sandbox)
