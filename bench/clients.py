"""The two device clients the pipeline bench drives, as subprocesses: the
daemon (``intercom-fsm run``) and the naive client (``bench/naive_client.py``).

Both run under :mod:`bench.loop_probe` (ICE on loopback; the lag probe only
when asked), read the same MJPEG source URL and sign in to the same sandbox.
The daemon keeps its grant in a token file, signed in once per bench run, so
every start measures a restart with stored tokens; the naive client keeps
tokens in memory and signs in again at every start, as such examples do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from intercom_fsm.sandbox.process import SandboxInfo
from tests.e2e.daemon_process import DaemonProcess, daemon_environment

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 30.0


class BenchError(RuntimeError):
    """A client did not start or sign in; the message says which and why."""


class Client(Protocol):
    name: str

    @property
    def pid(self) -> int: ...

    def start(self, source_url: str, width: int, height: int, fps: float) -> None:
        """Launch, without waiting."""
        ...

    def wait_ready(self) -> str:
        """Block until the client's signaling socket is open; its device code."""
        ...

    def stop(self) -> None: ...

    def known_device_code(self) -> str | None:
        """The device code before the client starts, when it has stored tokens."""
        ...


def probe_command(module: str, args: list[str], lag_file: Path | None) -> list[str]:
    probe = [sys.executable, "-m", "bench.loop_probe"]
    if lag_file is not None:
        probe += ["--lag-file", str(lag_file)]
    return [*probe, module, *args]


class DaemonClient:
    name = "intercom-fsm"

    def __init__(
        self,
        info: SandboxInfo,
        workdir: Path,
        lag_file: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``settings``: more of the daemon's environment (``VIDEO_RTSP_READER``...)."""
        self._info = info
        self._workdir = workdir
        self._settings = settings or {}
        self.token_file = workdir / "config" / "tokens.json"
        self._lag_file = lag_file
        self._process: DaemonProcess | None = None
        self._runs = 0

    @property
    def pid(self) -> int:
        assert self._process is not None and self._process.process is not None
        return self._process.process.pid

    def sign_in(self) -> None:
        """The device flow, once: ``intercom-fsm login`` against the sandbox,
        which approves by itself."""
        environ = daemon_environment(self._info, self.token_file)
        result = subprocess.run(
            [sys.executable, "-m", "intercom_fsm", "login"],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 or not self.token_file.exists():
            raise BenchError(f"intercom-fsm login failed:\n{result.stderr.decode()[-3000:]}")

    def with_lag_probe(self, lag_file: Path | None) -> DaemonClient:
        self._lag_file = lag_file
        return self

    def start(self, source_url: str, width: int, height: int, fps: float) -> None:
        self._runs += 1
        environ = daemon_environment(
            self._info,
            self.token_file,
            VIDEO_SOURCE=source_url,
            VIDEO_WIDTH=str(width),
            VIDEO_HEIGHT=str(height),
            VIDEO_FPS=f"{fps:g}",
            # The daemon's own defaults: recovery is measured as shipped.
            BACKOFF_BASE_SECONDS="1",
            BACKOFF_CAP_SECONDS="60",
            LOG_LEVEL="INFO",
            **self._settings,
        )
        self._process = DaemonProcess(
            environ,
            self._workdir / f"daemon-{self._runs}.log",
            command=probe_command("intercom_fsm", ["run"], self._lag_file),
        ).start()

    def wait_ready(self) -> str:
        assert self._process is not None
        try:
            self._process.wait_for_state("Negotiating", timeout=READY_TIMEOUT)
        except AssertionError as error:
            raise BenchError(str(error)) from None
        code: str = json.loads(self.token_file.read_text())["device_code"]
        return code

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def known_device_code(self) -> str | None:
        if not self.token_file.exists():
            return None
        code: str = json.loads(self.token_file.read_text())["device_code"]
        return code


def naive_client_arguments(info: SandboxInfo, source: str) -> list[str]:
    """bench.naive_client's command line for this sandbox and source."""
    # Each value joined to its option: a generated secret may begin with "-",
    # which argparse would otherwise read as an option of its own.
    args = [
        f"--http-base={info.http_base_url}",
        f"--ws-base={info.ws_base_url}",
        f"--client-id={info.client_id}",
        f"--source={source}",
    ]
    if info.client_secret:
        args.append(f"--client-secret={info.client_secret}")
    return args


class NaiveClient:
    name = "naive"

    def __init__(
        self,
        info: SandboxInfo,
        workdir: Path,
        lag_file: Path | None = None,
        *,
        wrap: Callable[[list[str]], list[str]] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        """``wrap`` and ``environ``: another command line and environment for
        the process (the network bench runs it in a namespace)."""
        self._info = info
        self._workdir = workdir
        self._lag_file = lag_file
        self._wrap = wrap
        self._environ = environ
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[dict[str, object]] = []
        self._changed = threading.Condition()
        self._runs = 0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def with_lag_probe(self, lag_file: Path | None) -> NaiveClient:
        self._lag_file = lag_file
        return self

    def start(self, source_url: str, width: int, height: int, fps: float) -> None:
        self._runs += 1
        self._lines = []
        args = naive_client_arguments(self._info, source_url)
        log = (self._workdir / f"naive-{self._runs}.log").open("ab")
        command = probe_command("bench.naive_client", args, self._lag_file)
        self._process = subprocess.Popen(
            self._wrap(command) if self._wrap is not None else command,
            cwd=ROOT,
            env={**(self._environ or os.environ), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        threading.Thread(target=self._read_stdout, args=(self._process,), daemon=True).start()

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                with self._changed:
                    self._lines.append(record)
                    self._changed.notify_all()

    def wait_ready(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        with self._changed:
            while True:
                events = [line.get("event") for line in self._lines]
                codes = [line.get("device_code") for line in self._lines if line.get("device_code")]
                if "connected" in events and codes:
                    return str(codes[-1])
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self._process is not None and self._process.poll() is not None
                ):
                    raise BenchError(f"the naive client did not connect; its output: {self._lines}")
                self._changed.wait(min(remaining, 0.2))

    def known_device_code(self) -> str | None:
        return None

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class ProcessSampler:
    """CPU seconds and peak resident memory of one process, sampled on a thread."""

    def __init__(self, pid: int, period: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._period = period
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProcessSampler:
        self._thread.start()
        return self

    def cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._period)
