"""The encoder floor: what the same source costs to decode and encode with the
same codec, in a tight loop, with no networking, no event loop, no threads.

JPEG pictures are taken from the running MJPEG source (so the content is the
one the clients stream), then each is decoded (``cv2.imdecode``), converted
to I420 and encoded with libvpx set up as the daemon sets it up
(:func:`intercom_fsm.adapters.camera.encoding.vp8_context`, at the daemon's
default bitrate for the size and rate), once per viewer: the floor for ``n``
viewers is one decode and ``n`` encodes per source picture, divided by the
``n`` frames streamed, which is what streaming costs when every viewer has its
own encoder. CPU is this process's ``time.process_time()``.
"""

from __future__ import annotations

import fractions
import time
import urllib.request

import av
import cv2
import numpy as np

from intercom_fsm.adapters.camera.encoding import default_bitrate, vp8_context

TIME_BASE = fractions.Fraction(1, 90_000)
MIN_CPU_SECONDS = 1.5
"""Each floor loops over the pictures until it has used at least this much CPU."""


def fetch_jpegs(url: str, count: int, timeout: float = 15.0) -> list[bytes]:
    """``count`` consecutive pictures from a ``multipart/x-mixed-replace`` stream."""
    pictures: list[bytes] = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        buffer = b""
        deadline = time.monotonic() + timeout
        while len(pictures) < count and time.monotonic() < deadline:
            chunk = response.read1(65536)
            if not chunk:
                break
            buffer += chunk
            while True:
                start = buffer.find(b"\xff\xd8")
                end = buffer.find(b"\xff\xd9", start + 2)
                if start < 0 or end < 0:
                    break
                pictures.append(buffer[start : end + 2])
                buffer = buffer[end + 2 :]
    if len(pictures) < count:
        raise RuntimeError(f"only {len(pictures)} of {count} pictures from {url}")
    return pictures


def encoder_floor(
    pictures: list[bytes], width: int, height: int, fps: float, viewers: int
) -> float:
    """CPU seconds per streamed frame: decode once, encode once per viewer."""
    bitrate = default_bitrate(width, height, fps)
    encoders = [vp8_context(width, height, fps, bitrate) for _ in range(viewers)]
    step = round(90_000 / fps)
    pts = 0
    frames = 0
    started = time.process_time()
    while time.process_time() - started < MIN_CPU_SECONDS:
        for jpeg in pictures:
            bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert bgr is not None, "the source sent a picture that does not decode"
            i420 = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), np.uint8)
            for encoder in encoders:
                frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
                frame.pts = pts
                frame.time_base = TIME_BASE
                encoder.encode(frame)  # the packets are dropped: no network
                frames += 1
            pts += step
    return (time.process_time() - started) / frames
