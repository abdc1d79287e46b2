"""The wake-up floor: what a frame costs an asyncio process that does only what
any client passing a camera's stream through must do, and nothing else.

    python bench/wakeup_floor.py --fps 15 --frame-bytes 3300 --viewers 1
    python bench/wakeup_floor.py --compare --rounds 3

Per frame, the camera (a thread of this process) writes an 18-byte segment and
then the frame's bytes to a TCP socket, as GStreamer's RTSP server writes an
access unit delimiter's packet before each picture. The client, a child
process (``python -m bench.wakeup_floor --client-side``), wakes on the socket,
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

Two variants show what a design without the event loop, or without anything
but the daemon's per-picture work, could reach (``--compare`` runs the four
in turns and prints them side by side):

* ``--client thread``: the client is one thread blocked in ``recv`` on the
  camera's socket instead of an asyncio loop;
* ``--work passthrough``: the camera sends a real H.264 stream in RTP
  (:func:`bench.passthrough_work.camera_pictures`) and the client does with
  each picture what the daemon does, with the daemon's own functions
  (:class:`bench.passthrough_work.PassthroughWork`: the RTSP and RTP
  framing, the payloads, each viewer's RTP header and SRTP), and no more.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the root
    sys.path.insert(0, str(ROOT))

from bench.passthrough_work import (  # noqa: E402
    DELIMITER_PACKET_BYTES,
    SRTP_KEY_BYTES,
    PassthroughWork,
    camera_pictures,
)

DELIMITER_BYTES = DELIMITER_PACKET_BYTES
"""The access unit delimiter's interleaved packet, written before each frame."""
RECEIVE_BYTES = 256 * 1024
"""What one read takes at most, as asyncio's."""
PACKET_BYTES = 1200
"""The largest datagram the client sends (a WebRTC sender's packets are about this size)."""
WARM_UP = 2.0
"""Seconds the client runs before it measures."""


CLIENTS = ("loop", "thread")
WORKS = ("bare", "passthrough")


@dataclass(frozen=True)
class WakeupFloor:
    ms_per_frame: float
    """Client CPU per frame streamed (a frame sent to every viewer counts ``viewers`` times)."""
    frames: int
    """Frames the client received and sent on in the measured seconds."""


def measure(
    fps: float,
    frame_bytes: int,
    viewers: int = 1,
    seconds: float = 8.0,
    client: str = "loop",
    work: str = "bare",
) -> WakeupFloor:
    """The floor for a camera sending ``frame_bytes`` a frame at ``fps``
    (``client`` and ``work``: see the module's text)."""
    if frame_bytes < 2 or viewers < 1 or fps <= 0:
        raise ValueError("a frame has bytes, a stream a rate, and the floor a viewer")
    if client not in CLIENTS or work not in WORKS:
        raise ValueError(f"a client is one of {CLIENTS}, its work one of {WORKS}")
    stop = threading.Event()
    frames = (
        camera_pictures(frame_bytes, fps)
        if work == "passthrough"
        else itertools.repeat((bytes(DELIMITER_BYTES), bytes(frame_bytes)))
    )
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.5)
        threads = [
            threading.Thread(target=_camera, args=(server, fps, frames, stop), daemon=True),
            threading.Thread(target=_drain, args=(sink, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            command = [
                sys.executable,
                "-m",
                "bench.wakeup_floor",
                "--client-side",
                f"--camera-port={server.getsockname()[1]}",
                f"--sink-port={sink.getsockname()[1]}",
                f"--frame-bytes={frame_bytes}",
                f"--viewers={viewers}",
                f"--seconds={seconds}",
                f"--client={client}",
                f"--work={work}",
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
    cpu_seconds, sent = done.stdout.split()
    if int(sent) == 0:
        raise RuntimeError("the wake-up floor's client sent no frame")
    return WakeupFloor(1000 * float(cpu_seconds) / (int(sent) * viewers), int(sent))


def _camera(
    server: socket.socket,
    fps: float,
    frames: Iterator[tuple[bytes, bytes]],
    stop: threading.Event,
) -> None:
    server.settimeout(10)
    try:
        connection, _ = server.accept()
    except OSError:
        return
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        due = time.monotonic()
        for delimiter, frame in frames:
            if stop.is_set():
                return
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


class Work(Protocol):
    frames: int

    def received(self, data: bytes) -> None: ...


class BareForwarder:
    """Counts the camera's bytes; sends each whole frame on, once per viewer."""

    def __init__(self, send: Callable[[bytes], object], frame_bytes: int, viewers: int) -> None:
        self._send = send
        self._frame_bytes = DELIMITER_BYTES + frame_bytes
        count = math.ceil(frame_bytes / PACKET_BYTES)
        size = math.ceil(frame_bytes / count)
        self._packets = [bytes(size)] * (count - 1) + [bytes(frame_bytes - size * (count - 1))]
        self._viewers = viewers
        self._pending = 0
        self.frames = 0

    def received(self, data: bytes) -> None:
        self._pending += len(data)
        while self._pending >= self._frame_bytes:
            self._pending -= self._frame_bytes
            self.frames += 1
            for _ in range(self._viewers):
                for packet in self._packets:
                    self._send(packet)


def _work(kind: str, send: Callable[[bytes], object], frame_bytes: int, viewers: int) -> Work:
    if kind == "passthrough":
        return PassthroughWork(send, viewers, secrets.token_bytes(SRTP_KEY_BYTES))
    return BareForwarder(send, frame_bytes, viewers)


class _OnTheLoop(asyncio.Protocol):
    def __init__(self, work: Work) -> None:
        self._work = work

    def data_received(self, data: bytes) -> None:
        self._work.received(data)


async def _loop_client(
    camera_port: int,
    sink_port: int,
    make_work: Callable[[Callable[[bytes], object]], Work],
    seconds: float,
) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    out, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", sink_port)
    )
    work = make_work(out.sendto)
    transport, _ = await loop.create_connection(lambda: _OnTheLoop(work), "127.0.0.1", camera_port)
    await asyncio.sleep(WARM_UP)
    frames, cpu = work.frames, time.process_time()
    await asyncio.sleep(seconds)
    result = time.process_time() - cpu, work.frames - frames
    transport.close()
    out.close()
    return result


def _thread_client(
    camera_port: int,
    sink_port: int,
    make_work: Callable[[Callable[[bytes], object]], Work],
    seconds: float,
) -> tuple[float, int]:
    """Blocked in ``recv`` between the camera's bytes, on this process's one thread."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
        socket.create_connection(("127.0.0.1", camera_port), timeout=10) as camera,
    ):
        out.connect(("127.0.0.1", sink_port))
        work = make_work(out.send)
        started = time.monotonic()
        while time.monotonic() - started < WARM_UP:
            work.received(camera.recv(RECEIVE_BYTES))
        frames, cpu, since = work.frames, time.process_time(), time.monotonic()
        while time.monotonic() - since < seconds:
            work.received(camera.recv(RECEIVE_BYTES))
        return time.process_time() - cpu, work.frames - frames


def compare(fps: float, frame_bytes: int, viewers: int, seconds: float, rounds: int) -> str:
    """Every client with every work, in turns, ``rounds`` times: a table."""
    variants = list(itertools.product(WORKS, CLIENTS))
    figures: dict[tuple[str, str], list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for work, client in variants:
            floor = measure(fps, frame_bytes, viewers, seconds, client, work)
            figures[work, client].append(floor.ms_per_frame)
    lines = [
        f"{fps:g} fps, {frame_bytes} bytes a frame, {viewers} viewer(s), "
        f"{rounds} round(s) of {seconds:g} s; CPU per frame streamed, in ms",
        "",
        "| work | client | each round | mean |",
        "|---|---|---|---|",
    ]
    for (work, client), values in figures.items():
        each = ", ".join(f"{value:.3f}" for value in values)
        lines.append(f"| {work} | {client} | {each} | {statistics.fmean(values):.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--frame-bytes", type=int, default=3300, help="bytes of one frame")
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds measured")
    parser.add_argument("--client", choices=CLIENTS, default="loop")
    parser.add_argument("--work", choices=WORKS, default="bare")
    parser.add_argument("--compare", action="store_true", help="every client and work in turns")
    parser.add_argument("--rounds", type=int, default=3, help="turns of --compare")
    parser.add_argument("--client-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--camera-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_side:

        def make_work(send: Callable[[bytes], object]) -> Work:
            return _work(args.work, send, args.frame_bytes, args.viewers)

        ports = (args.camera_port, args.sink_port)
        if args.client == "thread":
            cpu_seconds, frames = _thread_client(*ports, make_work, args.seconds)
        else:
            cpu_seconds, frames = asyncio.run(_loop_client(*ports, make_work, args.seconds))
        print(f"{cpu_seconds:.6f} {frames}")
        return 0
    if args.compare:
        print(compare(args.fps, args.frame_bytes, args.viewers, args.seconds, args.rounds))
        return 0
    floor = measure(args.fps, args.frame_bytes, args.viewers, args.seconds, args.client, args.work)
    print(
        f"{args.fps:g} fps, {args.frame_bytes} bytes a frame, {args.viewers} viewer(s),"
        f" {args.client} client, {args.work} work:"
        f" {floor.ms_per_frame:.3f} ms of CPU per frame streamed ({floor.frames} frames)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
