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
import fractions
import glob
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import attrs
import av

from intercom_fsm.adapters.camera import v4l2
from intercom_fsm.adapters.camera.frames import PIXEL_FORMAT, VIDEO_TIME_BASE

HARDWARE_CODEC = "h264_v4l2m2m"
SOFTWARE_CODEC = "libx264"
KEYFRAME_MAX_INTERVAL = 10.0


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
    with v4l2.opened(node) as descriptor:
        if descriptor is None:
            return False
        try:
            caps = v4l2.capabilities(descriptor)
            if caps & v4l2.CAP_VIDEO_M2M_MPLANE:
                buffer_type = v4l2.BUF_TYPE_VIDEO_CAPTURE_MPLANE
            elif caps & v4l2.CAP_VIDEO_M2M:
                buffer_type = v4l2.BUF_TYPE_VIDEO_CAPTURE
            else:
                return False
            return v4l2.PIXEL_FORMAT_H264 in v4l2.formats(descriptor, buffer_type)
        except OSError:  # not a V4L2 device (ENOTTY), or gone
            return False


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
