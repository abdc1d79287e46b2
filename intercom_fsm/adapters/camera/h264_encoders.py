"""Which encoder the shared H.264 encoding uses: the board's hardware encoder
when it has one, libx264 otherwise.

The hardware encoders FFmpeg drives on small boards are V4L2
memory-to-memory devices (``h264_v4l2m2m``: the Raspberry Pi 4 and older
have one, ``bcm2835-codec`` at ``/dev/video11``; the Pi 5 has none). PyAV's
wheel lists the codec on every Linux machine, so it counts only when a device
node also answers as a memory-to-memory device with H.264 on its capture
(encoded) side. The choice is made once, when the camera opens, and logged;
:class:`EncoderChoice` is what ``status`` and ``/metrics`` show.

A hardware encoder that fails while encoding is replaced by libx264 for good
(:mod:`.h264_encoding`), without dropping a viewer.
"""

from __future__ import annotations

import contextlib
import fcntl
import fractions
import glob
import os
import struct
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import attrs
import av

from intercom_fsm.adapters.camera.frames import PIXEL_FORMAT, VIDEO_TIME_BASE

HARDWARE_CODEC = "h264_v4l2m2m"
SOFTWARE_CODEC = "libx264"
KEYFRAME_MAX_INTERVAL = 10.0

# linux/videodev2.h
_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
_VIDIOC_ENUM_FMT = 0xC0405602  # _IOWR('V', 2, struct v4l2_fmtdesc), 64 bytes
_CAP_VIDEO_M2M_MPLANE = 0x00004000
_CAP_VIDEO_M2M = 0x00008000
_CAP_DEVICE_CAPS = 0x80000000
_BUF_TYPE_VIDEO_CAPTURE = 1
_BUF_TYPE_VIDEO_CAPTURE_MPLANE = 9
_PIXEL_FORMAT_H264 = int.from_bytes(b"H264", "little")
_MAX_FORMATS = 64


@attrs.frozen
class EncoderChoice:
    codec: str
    """FFmpeg's encoder: ``h264_v4l2m2m`` or ``libx264``."""
    hardware: bool
    reason: str
    """Why this one, in words for the log and ``status``."""
    device: str | None = None

    @property
    def description(self) -> str:
        kind = "hardware" if self.hardware else "software"
        return f"{self.codec} ({kind}): {self.reason}"


def software(reason: str) -> EncoderChoice:
    return EncoderChoice(SOFTWARE_CODEC, hardware=False, reason=reason)


def choose_h264_encoder(
    preference: str = "auto",
    codecs: Collection[str] | None = None,
    find_device: Callable[[], str | None] | None = None,
) -> EncoderChoice:
    """``preference`` is ``auto`` or ``software``; ``codecs`` (PyAV's list) and
    ``find_device`` are the machine's, unless a test says otherwise."""
    if preference == "software":
        return software("software asked for")
    available = av.codecs_available if codecs is None else codecs
    if HARDWARE_CODEC not in available:
        return software(f"PyAV has no {HARDWARE_CODEC}")
    device = (find_device or find_m2m_h264_encoder)()
    if device is None:
        return software("no V4L2 memory-to-memory H.264 encoder on this machine")
    return EncoderChoice(
        HARDWARE_CODEC,
        hardware=True,
        reason=f"V4L2 memory-to-memory encoder {device}",
        device=device,
    )


def find_m2m_h264_encoder(nodes: Iterable[str] | None = None) -> str | None:
    """The first ``/dev/video*`` node that is a memory-to-memory device giving H.264."""
    for node in sorted(glob.glob("/dev/video*") if nodes is None else nodes):
        if is_m2m_h264_encoder(node):
            return node
    return None


def is_m2m_h264_encoder(node: str) -> bool:
    try:
        descriptor = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        capability = bytearray(104)
        fcntl.ioctl(descriptor, _VIDIOC_QUERYCAP, capability)
        capabilities, device_caps = struct.unpack_from("=II", capability, 84)
        caps = device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities
        if caps & _CAP_VIDEO_M2M_MPLANE:
            buffer_type = _BUF_TYPE_VIDEO_CAPTURE_MPLANE
        elif caps & _CAP_VIDEO_M2M:
            buffer_type = _BUF_TYPE_VIDEO_CAPTURE
        else:
            return False
        return _PIXEL_FORMAT_H264 in _capture_formats(descriptor, buffer_type)
    except OSError:  # not a V4L2 device (ENOTTY), or gone
        return False
    finally:
        os.close(descriptor)


def _capture_formats(descriptor: int, buffer_type: int) -> set[int]:
    formats: set[int] = set()
    for index in range(_MAX_FORMATS):
        description = bytearray(struct.pack("=II", index, buffer_type) + bytes(56))
        try:
            fcntl.ioctl(descriptor, _VIDIOC_ENUM_FMT, description)
        except OSError:  # EINVAL past the last one
            break
        formats.add(struct.unpack_from("=I", description, 44)[0])
    return formats


class H264Encoder(Protocol):
    def encode(self, frame: av.VideoFrame | None) -> Iterable[av.Packet[Any]]: ...


OpenH264Encoder = Callable[[EncoderChoice, int, int, float, int], H264Encoder]


def open_h264_encoder(
    choice: EncoderChoice, width: int, height: int, fps: float, bitrate: int
) -> av.VideoCodecContext:
    """An encoder set up for live video to WebRTC viewers: Constrained
    Baseline (what every WebRTC H.264 receiver takes, aiortc's own offer
    included), no look-ahead, an IDR at least every
    :data:`KEYFRAME_MAX_INTERVAL` and whenever a frame asks for one, the
    parameter sets in band."""
    codec = av.CodecContext.create(choice.codec, "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width = width
    codec.height = height
    codec.pix_fmt = PIXEL_FORMAT
    codec.time_base = VIDEO_TIME_BASE
    codec.framerate = fractions.Fraction(fps).limit_denominator(1000)
    codec.bit_rate = bitrate
    codec.gop_size = max(1, round(fps * KEYFRAME_MAX_INTERVAL))
    codec.max_b_frames = 0
    if choice.hardware:
        codec.profile = "Constrained Baseline"
        # The Pi's encoder returns pictures in order; a few buffers are enough.
        codec.options = {"num_output_buffers": "4", "num_capture_buffers": "4"}
    else:
        codec.profile = "Baseline"
        codec.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "level": "31",
            "x264-params": "repeat-headers=1",
        }
        codec.thread_count = 1
    return codec


def closing(encoder: H264Encoder) -> None:
    """Flush and forget an encoder (errors ignored: it may be the one that failed)."""
    with contextlib.suppress(Exception):
        list(encoder.encode(None))
