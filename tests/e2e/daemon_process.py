"""The daemon as a real subprocess, for end-to-end tests.

It runs ``intercom-fsm run`` with JSON logs on stderr (kept in a file the test
reads), after restricting ICE host candidates to 127.0.0.1: tests only, see
``tests/loopback.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from intercom_fsm.sandbox.process import SandboxInfo

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = (
    "from tests.loopback import accept_loopback_viewers_in_the_daemon, restrict_ice_to_loopback; "
    "restrict_ice_to_loopback(); accept_loopback_viewers_in_the_daemon(); "
    "from intercom_fsm.cli import main; raise SystemExit(main({argv!r}))"
)


def daemon_environment(info: SandboxInfo, token_file: Path, **overrides: str) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OAUTH_", "HTTP_API", "WEBSOCKET_API", "VIDEO_", "TOKEN_FILE"))
    }
    environ.update(
        {
            "HTTP_API_BASE_URL": info.http_base_url,
            "WEBSOCKET_API_BASE_URL": info.ws_base_url,
            "OAUTH_CLIENT_ID": info.client_id,
            "OAUTH_CLIENT_SECRET": info.client_secret or "",
            "TOKEN_FILE_PATH": str(token_file),
            "VIDEO_SOURCE": "testsrc",
            "VIDEO_FPS": "10",
            "BACKOFF_BASE_SECONDS": "0.2",
            "BACKOFF_CAP_SECONDS": "1",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environ.update(overrides)
    return environ


class DaemonProcess:
    def __init__(
        self,
        environ: Mapping[str, str],
        log_path: Path,
        argv: tuple[str, ...] = ("run",),
        command: Sequence[str] | None = None,
    ) -> None:
        """``command`` replaces the whole command line (the benchmark runs the
        daemon under its loop probe); ``argv`` is ignored then."""
        self.environ = dict(environ)
        self.log_path = log_path
        self.argv = list(argv)
        self.command = (
            list(command)
            if command is not None
            else [sys.executable, "-c", LAUNCH.format(argv=self.argv)]
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> DaemonProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def records(self) -> list[dict[str, Any]]:
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def transitions(self) -> list[tuple[str, str, str]]:
        return [
            (r["from"], r["to"], r["event"])
            for r in self.records()
            if "from" in r and r.get("session") is None and r["from"] != r["to"]
        ]

    def wait_until(
        self, condition: Callable[[DaemonProcess], bool], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self):
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; daemon log:\n{self.text()[-6000:]}")

    def wait_for_state(self, state: str, timeout: float = 30.0, after: int = 0) -> int:
        """Wait for the n-th (after ``after`` earlier ones) entry into ``state``;
        returns how many entries there have been."""

        def entered(daemon: DaemonProcess) -> bool:
            return sum(1 for t in daemon.transitions() if t[1] == state) > after

        self.wait_until(entered, timeout, f"state {state}")
        return sum(1 for t in self.transitions() if t[1] == state)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
