"""Run the sandbox as a subprocess: for tests and the demo, without importing Django here.

    with SandboxProcess(device_interval=1) as sandbox:
        sandbox.info.http_base_url       # HTTP_API_BASE_URL for the client
        sandbox.control.approve(user_code="...")

:meth:`SandboxProcess.start` runs ``python -m intercom_fsm.sandbox --port 0``
with a state directory (a new temporary one unless given), waits (bounded) for
``<state_dir>/sandbox.json`` and reads the URLs and credentials from it; the
sandbox's output goes to ``<state_dir>/sandbox.log``. :meth:`SandboxProcess.stop`
sends SIGTERM, then SIGKILL after a bounded wait.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.files import read_json_object
from intercom_fsm.sandbox.options import LOG_FILE, SANDBOX_INFO_FILE

POLL_SECONDS = 0.05
LOG_TAIL_CHARS = 4000


class SandboxStartError(RuntimeError):
    """The sandbox exited or did not become ready in time."""


@dataclass(frozen=True)
class SandboxInfo:
    """What a running sandbox wrote to ``sandbox.json``."""

    http_base_url: str
    ws_base_url: str
    viewer_url: str
    verification_uri: str
    control_url: str | None
    client_id: str
    client_secret: str | None
    username: str
    password: str
    state_dir: Path
    pid: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        fields = {name: data[name] for name in cls.__dataclass_fields__}
        fields["state_dir"] = Path(data["state_dir"])
        return cls(**fields)


class SandboxProcess:
    """One sandbox subprocess on 127.0.0.1 with a free port, as a context manager."""

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        public_client: bool = False,
        auto_approve: bool = False,
        device_interval: int = 1,
        device_expires_in: int = 600,
        access_token_lifetime: int = 3600,
        test_controls: bool = True,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._chosen_state_dir = state_dir
        self._state_dir: Path | None = None
        self._arguments = [
            "--host",
            host,
            "--port",
            "0",
            "--device-interval",
            str(device_interval),
            "--device-expires-in",
            str(device_expires_in),
            "--access-token-lifetime",
            str(access_token_lifetime),
            *(["--public-client"] if public_client else []),
            *(["--auto-approve"] if auto_approve else []),
            *(["--test-controls"] if test_controls else []),
            *extra_args,
        ]
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._info: SandboxInfo | None = None

    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return self._info

    @property
    def control(self) -> SandboxControl:
        """The control API (the sandbox runs with ``--test-controls`` by default)."""
        return SandboxControl(self.info.http_base_url)

    @property
    def state_dir(self) -> Path:
        if self._state_dir is None:
            raise RuntimeError("the sandbox has not been started")
        return self._state_dir

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    def log_text(self) -> str:
        """Everything the sandbox has printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self) -> SandboxInfo:
        if self._process is not None:
            raise RuntimeError("the sandbox was already started")
        if self._chosen_state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="intercom-sandbox-test-"))
        else:
            self._state_dir = self._chosen_state_dir
            self._state_dir.mkdir(parents=True, exist_ok=True)
        info_path = self._state_dir / SANDBOX_INFO_FILE
        info_path.unlink(missing_ok=True)
        self._log = (self._state_dir / LOG_FILE).open("ab")
        command = [sys.executable, "-m", "intercom_fsm.sandbox"]
        command += ["--state-dir", str(self._state_dir), *self._arguments]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self._info = self._wait_for_info(info_path)
        except BaseException:
            self.stop()
            raise
        return self._info

    def _wait_for_info(self, info_path: Path) -> SandboxInfo:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            data = read_json_object(info_path)
            if data is not None and data.get("pid") == self._process.pid:
                return SandboxInfo.from_json(data)
            if self._process.poll() is not None:
                raise SandboxStartError(
                    f"the sandbox exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            time.sleep(POLL_SECONDS)
        raise SandboxStartError(
            f"the sandbox was not ready after {self._startup_timeout:g} s:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        return self.log_text()[-LOG_TAIL_CHARS:]

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the sandbox (SIGTERM, then SIGKILL after ``timeout``); returns its exit code."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._info = None
        if self._chosen_state_dir is None and self._state_dir is not None and code == 0:
            # A failed run keeps its directory so that its log can be read.
            shutil.rmtree(self._state_dir, ignore_errors=True)
        return code

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
