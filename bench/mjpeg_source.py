"""A synthetic IP camera: MJPEG over HTTP on loopback, every frame time-stamped.

The pipeline bench needs a camera whose capture time it knows. This process
plays one: a generator thread makes frames at exactly ``--fps`` (deadlines on
``time.monotonic()``, so no drift), draws the wall-clock capture time into
each one with :func:`bench.stamp.write_stamp` just before JPEG encoding (the
"glass" end of glass-to-glass), and keeps only the newest JPEG. HTTP clients
get ``multipart/x-mixed-replace`` like from a real IP camera; a client slower
than the camera skips frames at the server and always gets the newest one,
while whatever its kernel socket buffer already holds stays queued, as with a
real camera.

The picture is a precomputed textured background (gradients, a grid, shapes,
text and a fixed fine grain) panned a few pixels per frame along a smooth
path, plus a bright rectangle that bounces around: it changes every frame
like a camera picture does, but costs little to make (a slice and a copy),
and encodes like a picture rather than like random noise.

Run as its own process (it is a camera: it must not share the GIL with the
system it feeds)::

    python -m bench.mjpeg_source --port 0 --width 640 --height 480 --fps 15

It prints ``READY http://127.0.0.1:<port>/stream.mjpg`` once it listens and
serves until SIGTERM or SIGINT. :class:`MjpegSourceProcess` starts and stops it
from the harness.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Self

import cv2
import numpy as np
import numpy.typing as npt

from bench.child import READY_PREFIX, ReadyChild
from bench.stamp import stamp_region, write_stamp

__all__ = ["MjpegSourceProcess", "SyntheticCamera", "main"]

BOUNDARY: Final = "frame"
STREAM_PATH: Final = "/stream.mjpg"
SNAPSHOT_PATH: Final = "/snapshot.jpg"
CLIENT_WAIT_S: Final = 0.5
"""How long a client thread waits for a frame before it looks at the stop flag
again: bounds how long a stopping server keeps a thread busy."""

Image = npt.NDArray[np.uint8]
DISCONNECTED: Final = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def _background(width: int, height: int, margin: int, seed: int = 7) -> Image:
    """A (height + 2·margin)×(width + 2·margin) BGR picture, made once.

    Smooth gradients for the large areas, a grid, filled and outlined shapes
    and text for edges, and a faint fixed grain for texture: what a camera
    looking at a room gives a JPEG encoder to do, more or less.
    """
    rows, cols = height + 2 * margin, width + 2 * margin
    y = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, np.newaxis]
    x = np.linspace(0.0, 1.0, cols, dtype=np.float32)[np.newaxis, :]
    blue = 60 + 120 * x + 30 * np.sin(6.0 * y)
    green = 50 + 100 * y + 40 * np.cos(4.0 * x + 2.0 * y)
    red = 90 + 80 * (1 - x) * y + 30 * np.sin(9.0 * x * y)
    picture = np.stack([blue, green, red], axis=-1)
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0.0, 10.0, (rows, cols)).astype(np.float32), (0, 0), 1.2)
    picture += grain[:, :, np.newaxis]
    image: Image = np.clip(picture, 0, 255).astype(np.uint8)

    step = max(32, cols // 20)
    for column in range(0, cols, step):
        cv2.line(image, (column, 0), (column, rows - 1), (40, 40, 40), 1)
    for row in range(0, rows, step):
        cv2.line(image, (0, row), (cols - 1, row), (40, 40, 40), 1)
    scale = max(1.0, width / 640)
    for _ in range(12):
        centre = (int(rng.integers(0, cols)), int(rng.integers(0, rows)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        size = int(rng.integers(15, 60) * scale)
        if rng.random() < 0.5:
            cv2.circle(image, centre, size, colour, -1 if rng.random() < 0.6 else 3, cv2.LINE_AA)
        else:
            corner = (centre[0] + size, centre[1] + int(size * 0.7))
            cv2.rectangle(image, centre, corner, colour, -1 if rng.random() < 0.6 else 3)
    for index in range(4):
        origin = (int(cols * 0.1) + index * step, int(rows * (0.3 + 0.15 * index)))
        cv2.putText(
            image,
            f"CAM {index} intercom-fsm bench",
            origin,
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (230, 230, 230),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
    return image


class SyntheticCamera:
    """Makes stamped JPEG frames at a fixed rate and keeps the newest one.

    One thread generates; any number of HTTP client threads wait on
    :attr:`condition` for a sequence newer than the one they sent last.
    """

    def __init__(self, width: int, height: int, fps: float, quality: int = 80) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        region_width, region_height = stamp_region(width)
        if region_width > width or region_height > height:
            raise ValueError(
                f"{width}x{height} is too small for the {region_width}x{region_height} stamp"
            )
        self.width, self.height, self.fps, self.quality = width, height, fps, quality
        self._margin = max(16, width // 20)
        self._background = _background(width, height, self._margin)
        self._box = (max(24, width // 8), max(18, height // 8))
        self.condition = threading.Condition()
        self.sequence = -1
        """Sequence number of :attr:`jpeg`; -1 until the first frame."""
        self.jpeg = b""
        self.stopping = False
        self.late_frames = 0
        """Deadlines skipped because a frame took longer than a whole period."""
        self._thread = threading.Thread(target=self._run, name="generator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        """False once the generator thread has ended (stopped, or failed)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        with self.condition:
            self.stopping = True
            self.condition.notify_all()
        self._thread.join(timeout=2.0)

    def render(self, sequence: int) -> Image:
        """Frame ``sequence`` without its stamp: the background panned along a
        Lissajous path (a few px per frame) and a bouncing bright box."""
        margin = self._margin
        # About 3 px/frame along a slow ellipse within the margin.
        phase = sequence * 3.0 / margin
        dx = margin + round(margin * math.cos(phase))
        dy = margin + round(margin * math.sin(0.7 * phase))
        frame = self._background[dy : dy + self.height, dx : dx + self.width].copy()
        box_w, box_h = self._box
        x = _bounce(sequence * max(2, self.width // 120), self.width - box_w)
        y = _bounce(sequence * max(1, self.height // 160), self.height - box_h)
        frame[y : y + box_h, x : x + box_w] = (250, 250, 255)
        return frame

    def _run(self) -> None:
        period = 1.0 / self.fps
        start = time.monotonic()
        tick = 0
        sequence = 0
        while True:
            deadline = start + tick * period
            with self.condition:
                if self.stopping:
                    return
                delay = deadline - time.monotonic()
                if delay > 0 and self.condition.wait_for(lambda: self.stopping, delay):
                    return
            frame = self.render(sequence)
            write_stamp(frame, time.time_ns() // 1_000_000, sequence)
            ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            with self.condition:
                self.jpeg, self.sequence = encoded.tobytes(), sequence
                self.condition.notify_all()
            sequence += 1
            tick += 1
            # Keep to the original grid of deadlines; after a stall longer than
            # a period, skip the missed ones instead of bursting to catch up.
            behind = int((time.monotonic() - start) / period) - tick
            if behind > 0:
                self.late_frames += behind
                tick += behind

    def newer_than(self, sequence: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame if its sequence is above ``sequence`` (waiting up to
        ``timeout`` s for one); None on timeout or when stopping."""
        with self.condition:
            self.condition.wait_for(lambda: self.sequence > sequence or self.stopping, timeout)
            if self.stopping or self.sequence <= sequence:
                return None
            return self.sequence, self.jpeg


def _bounce(position: int, span: int) -> int:
    """``position`` folded back and forth into ``0..span``."""
    if span <= 0:
        return 0
    position %= 2 * span
    return position if position <= span else 2 * span - position


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == STREAM_PATH:
                self._stream()
            elif path == SNAPSHOT_PATH:
                self._snapshot()
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except DISCONNECTED:
            self.close_connection = True

    def _snapshot(self) -> None:
        camera = self.server.camera
        frame = camera.newer_than(-1, timeout=5.0)
        if frame is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(frame[1])))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(frame[1])

    def _stream(self) -> None:
        camera = self.server.camera
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        sent = -1
        while not camera.stopping:
            frame = camera.newer_than(sent, timeout=CLIENT_WAIT_S)
            if frame is None:
                continue
            sent, jpeg = frame
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            ).encode("ascii")
            self.wfile.write(head + jpeg + b"\r\n")
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """No access log: stderr is for problems."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, camera: SyntheticCamera) -> None:
        self.camera = camera
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that goes away is not an error worth a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTED):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mjpeg_source", description="A synthetic MJPEG IP camera."
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality, 1-100")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        camera = SyntheticCamera(args.width, args.height, args.fps, args.quality)
    except ValueError as error:
        print(f"mjpeg_source: {error}", file=sys.stderr)
        return 2
    server = _Server(args.port, camera)
    camera.start()
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
    )
    serving.start()
    port = server.server_address[1]
    print(f"{READY_PREFIX}http://127.0.0.1:{port}{STREAM_PATH}", flush=True)
    status = 0
    try:
        # A timed wait: the main thread returns to the interpreter often, so
        # the signal handler runs promptly.
        while not stop.wait(0.2):
            if not camera.running:
                # Its traceback is on stderr already; a camera that makes no
                # frames must not look alive to the harness.
                status = 1
                break
    finally:
        camera.stop()
        server.shutdown()
        server.server_close()
    return status


class MjpegSourceProcess:
    """The synthetic camera as a child process, for the harness.

    ``start()`` returns once it serves (``url`` is then the stream's address);
    ``stop()`` asks it to end with SIGTERM and kills it if it has not within
    5 s. Also a context manager.
    """

    READY_TIMEOUT_S: Final = 15.0

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        quality: int = 80,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """``wrap`` turns the command line into another (e.g. run it in a
        network namespace: its URL is then on that namespace's loopback)."""
        self.width, self.height, self.fps, self.quality = width, height, fps, quality
        command = [
            sys.executable,
            "-m",
            "bench.mjpeg_source",
            "--port=0",
            f"--width={width}",
            f"--height={height}",
            f"--fps={fps}",
            f"--quality={quality}",
        ]
        self._child = ReadyChild(
            "the MJPEG source",
            wrap(command) if wrap is not None else command,
            cwd=Path(__file__).resolve().parents[1],
        )
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/stream.mjpg``; only after :meth:`start`."""
        if self._url is None:
            raise RuntimeError("the MJPEG source has not been started")
        return self._url

    @property
    def snapshot_url(self) -> str:
        return self.url.removesuffix(STREAM_PATH) + SNAPSHOT_PATH

    @property
    def pid(self) -> int:
        if self._child.process is None:
            raise RuntimeError("the MJPEG source has not been started")
        return self._child.process.pid

    @property
    def returncode(self) -> int | None:
        """None while running (or before start)."""
        process = self._child.process
        return None if process is None else process.poll()

    def start(self) -> Self:
        self._url = self._child.start(self.READY_TIMEOUT_S)
        return self

    def stop(self) -> None:
        self._child.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
