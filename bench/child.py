"""A server the bench runs as a child process: started, awaited until it
prints ``READY <url>`` on its stdout, stopped with SIGTERM (SIGKILL if it
has not ended within a few seconds).

Its stdout is read to the end on a thread of its own, so the pipe never
fills, and every line is kept (the RTSP camera reports its clients' SETUPs
there).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Final

READY_PREFIX: Final = "READY "
STOP_TIMEOUT_S: Final = 5.0


class ReadyChild:
    def __init__(self, what: str, command: list[str], cwd: Path | None = None) -> None:
        """``what`` names the server in errors ("the MJPEG source")."""
        self._what = what
        self._command = command
        self._cwd = cwd
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self._process

    def lines(self) -> list[str]:
        """What it printed so far, each line stripped."""
        with self._lock:
            return list(self._lines)

    def start(self, ready_timeout: float) -> str:
        """Start it and return the URL it reports; on any failure it is stopped."""
        if self._process is not None:
            raise RuntimeError(f"{self._what} was already started")
        self._process = subprocess.Popen(
            self._command,
            cwd=self._cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        assert self._process.stdout is not None
        threading.Thread(
            target=self._drain, args=(self._process.stdout, lines), daemon=True
        ).start()
        try:
            return self._ready_url(lines, ready_timeout)
        except BaseException:
            self.stop()
            raise

    def signal(self, number: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(number)

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a paused server cannot end
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def _drain(self, stream: IO[str], lines: queue.Queue[str | None]) -> None:
        with stream, contextlib.suppress(ValueError, OSError):
            for line in stream:
                with self._lock:
                    self._lines.append(line.strip())
                lines.put(line)
        lines.put(None)

    def _ready_url(self, lines: queue.Queue[str | None], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self._what} did not report READY within {timeout:g} s")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                assert self._process is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=2.0)
                raise RuntimeError(
                    f"{self._what} exited (status {self._process.returncode}) before it was"
                    " ready (its stderr says why)"
                )
            if line.startswith(READY_PREFIX):
                return line.removeprefix(READY_PREFIX).strip()
