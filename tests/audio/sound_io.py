"""Sound into and out of the test sound server: ``pacat`` fed from a thread,
``parec`` collected by a thread."""

from __future__ import annotations

import contextlib
import ctypes
import io
import signal
import subprocess
import threading
import time

import numpy as np
import numpy.typing as npt

RATE = 48_000
Samples = npt.NDArray[np.int16]
PR_SET_PDEATHSIG = 1
# Resolved here: between fork and exec the child may not import anything.
_prctl = ctypes.CDLL(None).prctl


def die_with_parent() -> None:
    """For ``preexec_fn``: the child gets SIGTERM when the test process dies,
    however it dies, so no sound server outlives a killed run."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Recording:
    """``parec`` of a sink's monitor, collected by a thread, each chunk
    with its arrival time."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._pending = b""
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        stream = self._process.stdout
        # A buffered pipe (Popen's default): read1 returns what has arrived.
        assert isinstance(stream, io.BufferedReader)
        while chunk := stream.read1(4096):
            with self._lock:
                data = self._pending + chunk
                whole = len(data) - len(data) % 2
                self._chunks.append(data[:whole])
                self._pending = data[whole:]

    def samples(self) -> Samples:
        with self._lock:
            data = b"".join(self._chunks)
        return np.frombuffer(data, dtype=np.int16).copy()

    def seconds(self) -> float:
        return len(self.samples()) / RATE

    def wait_for(self, seconds: float, timeout: float) -> Samples:
        """At least ``seconds`` of sound, within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.seconds() < seconds:
            if time.monotonic() > deadline:
                raise TimeoutError(f"recorded {self.seconds():.2f} s of {seconds:.2f} s")
            time.sleep(0.02)
        return self.samples()

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def stop(self) -> None:
        end_process(self._process)
        self._thread.join(2)


class Player:
    """``pacat`` fed from a thread: plays ``samples`` (looped when ``loop``)."""

    def __init__(self, process: subprocess.Popen[bytes], samples: Samples, loop: bool) -> None:
        self._process = process
        self._samples = samples
        self._loop = loop
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stream = self._process.stdin
        assert stream is not None
        data = self._samples.astype("<i2").tobytes()
        block = RATE // 50 * 2
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            while not self._stopping.is_set():
                for start in range(0, len(data), block):
                    if self._stopping.is_set():
                        break
                    stream.write(data[start : start + block])
                if not self._loop:
                    break
            stream.close()

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._process.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        end_process(self._process)
        self._thread.join(2)


def end_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(3)
