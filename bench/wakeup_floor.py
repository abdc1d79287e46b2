"""The wake-up floor: what a frame costs an asyncio process that does only what
any client passing a camera's stream through must do, and nothing else.

    python bench/wakeup_floor.py --fps 15 --frame-bytes 3300 --viewers 1

Per frame, the camera (a thread of this process) writes an 18-byte segment and
then the frame's bytes to a TCP socket, as GStreamer's RTSP server writes an
access unit delimiter's packet before each picture. The client, a child
process (``python -m bench.wakeup_floor --client``), wakes on the socket,
reads, and once a whole frame is in sends it on in datagrams of at most
:data:`PACKET_BYTES` to a sink (another thread of this process), once per
viewer. No RTP parsing, no SRTP, no RTCP, no timers. Its own CPU
(``time.process_time``) over the frames it sent, divided by the viewers, is
the figure: set beside the daemon's CPU per frame in the same run, the
difference is what the daemon's own Python (and its SRTP and RTCP) costs
above the event loop's wake-ups and the system calls.

The encoder floor (:mod:`bench.floor`) is a tight loop that never sleeps; this
one sleeps between frames, as the daemon does, so the two move apart when the
machine's wake-ups get slower or faster and its arithmetic does not.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DELIMITER_BYTES = 18
"""The access unit delimiter's interleaved packet, written before each frame."""
PACKET_BYTES = 1200
"""The largest datagram the client sends (a WebRTC sender's packets are about this size)."""
WARM_UP = 2.0
"""Seconds the client runs before it measures."""


@dataclass(frozen=True)
class WakeupFloor:
    ms_per_frame: float
    """Client CPU per frame streamed (a frame sent to every viewer counts ``viewers`` times)."""
    frames: int
    """Frames the client received and sent on in the measured seconds."""


def measure(fps: float, frame_bytes: int, viewers: int = 1, seconds: float = 8.0) -> WakeupFloor:
    """The floor for a camera sending ``frame_bytes`` a frame at ``fps``."""
    if frame_bytes < 1 or viewers < 1 or fps <= 0:
        raise ValueError("a frame has bytes, a stream a rate, and the floor a viewer")
    stop = threading.Event()
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.5)
        threads = [
            threading.Thread(target=_camera, args=(server, fps, frame_bytes, stop), daemon=True),
            threading.Thread(target=_drain, args=(sink, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            command = [
                sys.executable,
                "-m",
                "bench.wakeup_floor",
                "--client",
                f"--camera-port={server.getsockname()[1]}",
                f"--sink-port={sink.getsockname()[1]}",
                f"--frame-bytes={frame_bytes}",
                f"--viewers={viewers}",
                f"--seconds={seconds}",
            ]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=WARM_UP + seconds + 30,
                check=True,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=2)
    cpu_seconds, frames = done.stdout.split()
    if int(frames) == 0:
        raise RuntimeError("the wake-up floor's client sent no frame")
    return WakeupFloor(1000 * float(cpu_seconds) / (int(frames) * viewers), int(frames))


def _camera(server: socket.socket, fps: float, frame_bytes: int, stop: threading.Event) -> None:
    server.settimeout(10)
    try:
        connection, _ = server.accept()
    except OSError:
        return
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        delimiter, frame = bytes(DELIMITER_BYTES), bytes(frame_bytes)
        due = time.monotonic()
        while not stop.is_set():
            due += 1 / fps
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                connection.sendall(delimiter)
                connection.sendall(frame)
            except OSError:
                return  # the client is done


def _drain(sink: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            sink.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return


class _Forwarder(asyncio.Protocol):
    """Counts the camera's bytes; sends each whole frame on, once per viewer."""

    def __init__(self, out: asyncio.DatagramTransport, frame_bytes: int, viewers: int) -> None:
        self._out = out
        self._frame_bytes = DELIMITER_BYTES + frame_bytes
        count = math.ceil(frame_bytes / PACKET_BYTES)
        size = math.ceil(frame_bytes / count)
        self._packets = [bytes(size)] * (count - 1) + [bytes(frame_bytes - size * (count - 1))]
        self._viewers = viewers
        self._pending = 0
        self.frames = 0

    def data_received(self, data: bytes) -> None:
        self._pending += len(data)
        while self._pending >= self._frame_bytes:
            self._pending -= self._frame_bytes
            self.frames += 1
            for _ in range(self._viewers):
                for packet in self._packets:
                    self._out.sendto(packet)


async def _client(
    camera_port: int, sink_port: int, frame_bytes: int, viewers: int, seconds: float
) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    out, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", sink_port)
    )
    transport, forwarder = await loop.create_connection(
        lambda: _Forwarder(out, frame_bytes, viewers), "127.0.0.1", camera_port
    )
    await asyncio.sleep(WARM_UP)
    frames, cpu = forwarder.frames, time.process_time()
    await asyncio.sleep(seconds)
    result = time.process_time() - cpu, forwarder.frames - frames
    transport.close()
    out.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--frame-bytes", type=int, default=3300, help="bytes of one frame")
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds measured")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--camera-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        cpu_seconds, frames = asyncio.run(
            _client(args.camera_port, args.sink_port, args.frame_bytes, args.viewers, args.seconds)
        )
        print(f"{cpu_seconds:.6f} {frames}")
        return 0
    floor = measure(args.fps, args.frame_bytes, args.viewers, args.seconds)
    print(
        f"{args.fps:g} fps, {args.frame_bytes} bytes a frame, {args.viewers} viewer(s):"
        f" {floor.ms_per_frame:.3f} ms of CPU per frame streamed ({floor.frames} frames)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
