"""Measuring flows for the lab's own tests: a UDP and a TCP sender and sink,
each a small process run inside a namespace.

    python -m tests.netlab.flows udp-sink PORT SECONDS
    python -m tests.netlab.flows udp-send HOST PORT COUNT PER_SECOND
    python -m tests.netlab.flows tcp-sink PORT
    python -m tests.netlab.flows tcp-send HOST PORT SECONDS

A sink prints ``READY`` once it listens, then one JSON line with what it got:
the UDP sink counts datagrams (and the longest silence between two of them)
for SECONDS after the first; the TCP sink counts the bytes of one connection
and the time from its first byte to the end. :class:`Flow` runs one from a test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
UDP_PAYLOAD = 200
TCP_CHUNK = 16 * 1024


def udp_sink(port: int, seconds: float) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sink.bind(("0.0.0.0", port))
        print("READY", flush=True)
        sink.settimeout(seconds + 5)
        received, first, last, longest_gap = 0, 0.0, 0.0, 0.0
        try:
            sink.recv(65536)
            received, first = 1, time.monotonic()
            last = first
            while (now := time.monotonic()) < first + seconds:
                sink.settimeout(first + seconds - now)
                sink.recv(65536)
                arrived = time.monotonic()
                longest_gap = max(longest_gap, arrived - last)
                last = arrived
                received += 1
        except TimeoutError:
            pass
    return {"received": received, "span": last - first, "longest_gap": longest_gap}


def udp_send(host: str, port: int, count: int, per_second: float) -> dict[str, Any]:
    payload = b"x" * UDP_PAYLOAD
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(count):
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sender.sendto(payload, (host, port))
    return {"sent": count}


def tcp_sink(port: int) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(1)
        print("READY", flush=True)
        server.settimeout(30)
        connection, _ = server.accept()
        with connection:
            connection.settimeout(30)
            total, first = 0, None
            while data := connection.recv(65536):
                if first is None:
                    first = time.monotonic()
                total += len(data)
            end = time.monotonic()
    return {"bytes": total, "seconds": end - (first or end)}


def tcp_send(host: str, port: int, seconds: float) -> dict[str, Any]:
    chunk = b"y" * TCP_CHUNK
    sent = 0
    with socket.create_connection((host, port), timeout=30) as connection:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            connection.sendall(chunk)
            sent += len(chunk)
    return {"bytes": sent}


class Flow:
    """One flow process; :meth:`result` waits (bounded) for its JSON line."""

    def __init__(self, command: Sequence[str]) -> None:
        self._process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def wait_ready(self, timeout: float = 10.0) -> Flow:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        line = self._process.stdout.readline()
        if line.strip() != "READY" or time.monotonic() > deadline:
            self.stop()
            raise AssertionError(f"the flow did not start: {line!r} {self._stderr()}")
        return self

    def result(self, timeout: float = 30.0) -> dict[str, Any]:
        try:
            out, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self._process.returncode != 0 or not lines:
            raise AssertionError(f"the flow failed ({self._process.returncode}): {err[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)

    def _stderr(self) -> str:
        self.stop()
        return self._process.stderr.read() if self._process.stderr else ""


def flow_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "tests.netlab.flows", *(str(a) for a in args)]


def main(argv: list[str]) -> int:
    kind, args = argv[0], argv[1:]
    if kind == "udp-sink":
        result = udp_sink(int(args[0]), float(args[1]))
    elif kind == "udp-send":
        result = udp_send(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif kind == "tcp-sink":
        result = tcp_sink(int(args[0]))
    elif kind == "tcp-send":
        result = tcp_send(args[0], int(args[1]), float(args[2]))
    else:
        print(f"unknown flow {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
