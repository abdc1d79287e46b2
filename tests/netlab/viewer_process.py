"""A viewer in its own process, to run inside a namespace of a lab.

    python -m tests.netlab.viewer_process SANDBOX_JSON DEVICE_CODE \
        [--ice-servers JSON] [--relay-only]

It is ``bench.stamp_viewer.StampViewer`` (sign in, offer, offer again when the
device comes back unless its call is still connected, as the monitor page
does) with the bench's marker-bit jitter buffer and a browser's loss recovery
(``bench/loss_recovery.py``), its host candidates restricted to the
addresses in ``INTERCOM_TEST_ICE_ADDRESSES`` (``tests/loopback.py``), and,
when asked, ICE servers and the relay-only policy. It prints JSON lines on stdout:

* ``{"event": "frame", "t", "offer", "seq", "latency_ms"}`` for every
  decoded frame (``t`` is ``time.monotonic()``, the same clock as the test's);
* ``{"event": "pair", "offer", "local", "remote"}``: the candidate types of the
  pair ICE selected, once the offer's first frame arrived;
* ``{"event": "bytes", "t", "payload", "keyframes"}`` twice a second: video
  payload and keyframes received so far.

:class:`ViewerProcess` starts it and reads those lines on a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT_PERIOD = 0.5


def selected_pair(pc: Any) -> tuple[str, str] | None:
    """(local, remote) candidate types of the nominated pair of the first
    transceiver, read from aioice (aiortc has no candidate-pair stats)."""
    try:
        ice = pc.getTransceivers()[0].receiver.transport.transport
        pair = next(iter(ice._connection._nominated.values()))
    except (AttributeError, IndexError, StopIteration):
        return None
    return str(pair.local_candidate.type), str(pair.remote_candidate.type)


async def watch(info_path: Path, device_code: str, ice_servers: str, relay_only: bool) -> None:
    from aiortc import RTCConfiguration, RTCIceServer
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    from bench.loss_recovery import RecoveringJitterBuffer
    from bench.marker_jitter import MarkerJitterBuffer
    from bench.stamp_viewer import StampViewer
    from intercom_fsm.sandbox.files import read_json_object
    from intercom_fsm.sandbox.process import SandboxInfo

    data = read_json_object(info_path)
    assert data is not None, f"no sandbox information in {info_path}"
    servers = [
        RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
        for s in json.loads(ice_servers)
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    viewer = StampViewer(
        SandboxInfo.from_json(data),
        device_code,
        configuration=RTCConfiguration(iceServers=servers, iceTransportPolicy=policy),
        keep_live_call=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await viewer.start()
    emit({"event": "ready"})
    printed, paired = 0, set()
    while not stop.is_set():
        for frame in viewer.frames[printed:]:
            emit(
                {
                    "event": "frame",
                    "t": frame.arrived,
                    "offer": frame.offer,
                    "seq": frame.sequence,
                    "latency_ms": frame.latency_ms,
                }
            )
            if frame.offer not in paired and viewer.peer_connection is not None:
                pair = selected_pair(viewer.peer_connection)
                if pair is not None:
                    paired.add(frame.offer)
                    emit(
                        {"event": "pair", "offer": frame.offer, "local": pair[0], "remote": pair[1]}
                    )
        printed = len(viewer.frames)
        emit(
            {
                "event": "bytes",
                "t": time.monotonic(),
                "payload": MarkerJitterBuffer.payload_bytes,
                "keyframes": RecoveringJitterBuffer.keyframes,
            }
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REPORT_PERIOD)
    await viewer.close()


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class ViewerProcess:
    """The viewer as a subprocess (``command`` wraps the argv, e.g. to run it in
    a namespace); its JSON lines are collected as they come."""

    def __init__(
        self,
        command: Callable[[list[str]], list[str]],
        info_path: Path,
        device_code: str,
        environ: dict[str, str],
        *,
        ice_servers: str = "[]",
        relay_only: bool = False,
        log_path: Path | None = None,
    ) -> None:
        argv = [sys.executable, "-m", "tests.netlab.viewer_process", str(info_path), device_code]
        argv += ["--ice-servers", ice_servers] + (["--relay-only"] if relay_only else [])
        self.records: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._log = (log_path or Path("/dev/null")).open("ab")
        self._process = subprocess.Popen(
            command(argv),
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self.records.append(record)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def of(self, event: str) -> list[dict[str, Any]]:
        with self._changed:
            return [r for r in self.records if r.get("event") == event]

    def frames(self) -> list[dict[str, Any]]:
        return self.of("frame")

    def payload_bytes_between(self, start: float, end: float) -> int:
        reports = [(r["t"], r["payload"]) for r in self.of("bytes")]
        before = [p for t, p in reports if t <= start]
        after = [p for t, p in reports if t <= end]
        return (after[-1] if after else 0) - (before[-1] if before else 0)

    def wait_until(
        self, condition: Callable[[ViewerProcess], bool], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._process.poll() is not None:
                    raise AssertionError(
                        f"timed out waiting for {what}; the viewer said {self.records[-5:]}"
                    )
                self._changed.wait(min(remaining, 0.2))

    def wait_for_frames(self, count: int, timeout: float = 30.0) -> None:
        self.wait_until(lambda v: len(v.frames()) >= count, timeout, f"{count} frames")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("info", type=Path)
    parser.add_argument("device_code")
    parser.add_argument("--ice-servers", default="[]")
    parser.add_argument("--relay-only", action="store_true")
    options = parser.parse_args(argv)
    from bench import loss_recovery
    from tests.loopback import restrict_ice_to_loopback

    restrict_ice_to_loopback()
    loss_recovery.install()
    asyncio.run(watch(options.info, options.device_code, options.ice_servers, options.relay_only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
