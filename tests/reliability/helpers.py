"""Shared helpers for the reliability tests: start the daemon against a
sandbox (the e2e helpers do the real work), read its JSON log, and keep a
record of every daemon log and every secret the runs produced, for the
secrets scan when the session ends (``conftest.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess, daemon_environment

LOGS: list[Path] = []
"""Every daemon log file any reliability test wrote."""
SECRETS: set[str] = set()
"""Every token, device code and client secret the sandboxes issued."""


def start_daemon(
    sandbox: SandboxProcess, token_file: Path, log_path: Path, **overrides: str
) -> DaemonProcess:
    LOGS.append(log_path)
    if sandbox.info.client_secret:
        SECRETS.add(sandbox.info.client_secret)
    return DaemonProcess(
        daemon_environment(sandbox.info, token_file, **overrides), log_path
    ).start()


@contextlib.contextmanager
def running_daemon(
    sandbox: SandboxProcess, token_file: Path, log_path: Path, **overrides: str
) -> Iterator[DaemonProcess]:
    daemon = start_daemon(sandbox, token_file, log_path, **overrides)
    try:
        yield daemon
    finally:
        daemon.stop()
        harvest_token_file(token_file)


def harvest_token_file(token_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(token_file.read_text())
        for key in ("access_token", "refresh_token", "device_code"):
            if isinstance(data.get(key), str):
                SECRETS.add(data[key])


def harvest_sandbox(sandbox: SandboxProcess) -> None:
    """Every token and device code the sandbox's database ever held."""
    database = sandbox.state_dir / "sandbox.sqlite3"
    if not database.exists():
        return
    connection = sqlite3.connect(database)
    try:
        for table, column in (
            ("oauth2_provider_accesstoken", "token"),
            ("oauth2_provider_refreshtoken", "token"),
            ("oauth2_provider_devicegrant", "device_code"),
        ):
            with contextlib.suppress(sqlite3.Error):
                for (value,) in connection.execute(f"SELECT {column} FROM {table}"):
                    if isinstance(value, str) and len(value) >= 8:
                        SECRETS.add(value)
    finally:
        connection.close()
    with contextlib.suppress(Exception):
        for device in sandbox.control.devices():
            SECRETS.add(device.device_code)


def messages(daemon: DaemonProcess) -> list[str]:
    return [str(r.get("msg", "")) for r in daemon.records()]


def count_matching(daemon: DaemonProcess, text: str) -> int:
    return sum(1 for m in messages(daemon) if text in m)


def wait_for_log(daemon: DaemonProcess, text: str, timeout: float = 15.0, after: int = 0) -> int:
    """Wait until more than ``after`` log messages contain ``text``; returns the count."""
    daemon.wait_until(
        lambda d: count_matching(d, text) > after, timeout, f"a log line with {text!r}"
    )
    return count_matching(daemon, text)


def timestamps(daemon: DaemonProcess, predicate: Callable[[dict[str, Any]], bool]) -> list[float]:
    return [
        datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
        for r in daemon.records()
        if predicate(r)
    ]


def device_code_of(token_file: Path) -> str:
    return str(json.loads(token_file.read_text())["device_code"])


def wait_sync(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def wait_async(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within} s waiting for {what}")
