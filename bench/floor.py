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

For an H.264 camera (RTSP) the floor is the same with the camera's packets
decoded once instead of the JPEGs (:func:`h264_encoder_floor`).
"""

from __future__ import annotations

import fractions
import time
import urllib.request
from dataclasses import dataclass

import av
import cv2
import numpy as np

from bench.stamp import latency_ms, read_stamp
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


@dataclass(frozen=True)
class H264Sample:
    packets: list[av.Packet[av.VideoStream]]
    """Consecutive packets from an IDR on."""
    extradata: bytes | None
    """The stream's parameter sets, as its SDP declared them."""


def fetch_h264_packets(url: str, count: int, timeout: float = 15.0) -> H264Sample:
    """``count`` consecutive packets of an H.264 RTSP stream, from an IDR on."""
    packets: list[av.Packet[av.VideoStream]] = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=timeout) as container:
        stream = container.streams.video[0]
        extradata = stream.codec_context.extradata
        for packet in container.demux(stream):
            if not packet.size or (not packets and not packet.is_keyframe):
                continue
            packets.append(packet)
            if len(packets) >= count:
                break
    if len(packets) < count:
        raise RuntimeError(f"only {len(packets)} of {count} packets from the RTSP camera")
    return H264Sample(packets, extradata)


def h264_encoder_floor(
    sample: H264Sample, width: int, height: int, fps: float, viewers: int
) -> float:
    """CPU seconds per streamed frame of an H.264 camera when every viewer
    has its own encoder: decode once, I420, encode VP8 once per viewer (what
    a client that cannot pass the camera's stream through must at least do)."""
    bitrate = default_bitrate(width, height, fps)
    encoders = [vp8_context(width, height, fps, bitrate) for _ in range(viewers)]
    step = round(90_000 / fps)
    pts = 0
    frames = 0
    started = time.process_time()
    while time.process_time() - started < MIN_CPU_SECONDS:
        decoder = av.CodecContext.create("h264", "r")
        assert isinstance(decoder, av.VideoCodecContext)
        decoder.thread_count = 1
        decoder.extradata = sample.extradata
        for packet in sample.packets:
            for decoded in decoder.decode(packet):
                assert isinstance(decoded, av.VideoFrame)
                i420 = decoded.reformat(format="yuv420p").to_ndarray()
                for encoder in encoders:
                    frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
                    frame.pts = pts
                    frame.time_base = TIME_BASE
                    encoder.encode(frame)
                    frames += 1
                pts += step
    return (time.process_time() - started) / frames


def camera_latency_ms(url: str, seconds: float = 5.0) -> list[int]:
    """Stamp to decoded picture when the bench itself reads the RTSP camera
    (PyAV over TCP, every packet decoded): the camera's own share of every
    client's glass-to-glass latency (the MJPEG camera it re-encodes, the
    encoder, the RTSP server)."""
    latencies: list[int] = []
    with av.open(url, options={"rtsp_transport": "tcp", "fflags": "nobuffer"}, timeout=10) as (
        container
    ):
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        end = time.monotonic() + seconds
        for packet in container.demux(stream):
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame)
                planes = frame.to_ndarray()  # yuv420p: the luma's rows come first
                # av types the array by every format it may return; yuv420p is
                # 8-bit, and view() lets mypy see that (it copies nothing).
                assert planes.dtype == np.uint8, planes.dtype
                stamp = read_stamp(planes[: frame.height].view(np.uint8))
                if stamp is not None:
                    latencies.append(latency_ms(stamp.wall_ms, time.time_ns() // 1_000_000))
            if time.monotonic() >= end:
                break
    return latencies[len(latencies) // 5 :]  # past what FFmpeg buffered while it probed
