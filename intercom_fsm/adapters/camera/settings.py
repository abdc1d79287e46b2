"""The camera adapter's settings and the counters it reports."""

from __future__ import annotations

import attrs

MAX_FPS = 120.0
RTSP_TRANSPORTS = ("tcp", "udp")
RTSP_READERS = ("native", "ffmpeg")
H264_ENCODERS = ("auto", "software")


def _even_size(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 16 or value > 8192 or value % 2:
        raise ValueError(f"{attribute.name} must be an even number from 16 to 8192, not {value}")


def _frame_rate(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value <= MAX_FPS:
        raise ValueError(f"{attribute.name} must be more than 0 and at most {MAX_FPS:g}")


def _timeout(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.1 <= value <= 60:
        raise ValueError(f"{attribute.name} must be from 0.1 to 60 seconds")


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive")


@attrs.frozen
class CameraSettings:
    """``source`` is ``VIDEO_SOURCE`` as written (see :mod:`.sources`). Every
    frame is delivered at ``width`` x ``height`` (even, as I420 needs), at most
    ``fps`` per second. A failed source is reopened after an exponential
    backoff with full jitter, starting at ``reopen_base`` seconds and never
    longer than ``reopen_cap``."""

    source: str = "testsrc"
    width: int = attrs.field(default=320, validator=_even_size)
    height: int = attrs.field(default=240, validator=_even_size)
    fps: float = attrs.field(default=5.0, validator=_frame_rate)
    reopen_base: float = attrs.field(default=0.5, validator=_positive)
    reopen_cap: float = attrs.field(default=10.0, validator=_positive)
    shared_encoder: bool = True
    """Viewers that negotiate VP8 share one encoder (see :mod:`.encoding`)."""
    bitrate: int | None = None
    """The shared encoders' bitrate: the ceiling of the VP8 one (its high
    layer, which viewers get when their path carries it, see :mod:`.layers`),
    the target of the H.264 one; None: a default for the size and rate."""
    rtsp_transport: str = attrs.field(
        default="tcp", validator=attrs.validators.in_(RTSP_TRANSPORTS)
    )
    """How an ``rtsp://`` camera sends its packets: ``tcp`` (interleaved in the
    RTSP connection: one port, no loss, through any NAT) or ``udp`` (lower
    latency on a clean LAN; lost packets stay lost)."""
    rtsp_reader: str = attrs.field(default="native", validator=attrs.validators.in_(RTSP_READERS))
    """Who reads an ``rtsp://`` camera: ``native`` reads its H.264 on the event
    loop (:mod:`.rtsp`; FFmpeg still reads what that does not take), ``ffmpeg``
    reads every RTSP camera through PyAV."""
    network_timeout: float = attrs.field(default=2.0, validator=_timeout)
    """Seconds a network stream may take to open, or to deliver its next
    packet, before it counts as failed (and is reopened with backoff)."""
    h264_passthrough: bool = True
    """An H.264 source's own packets go to viewers that accept its profile."""
    h264_encoder: str = attrs.field(default="auto", validator=attrs.validators.in_(H264_ENCODERS))
    """The shared H.264 encoder: ``auto`` uses a V4L2 memory-to-memory encoder
    (``h264_v4l2m2m``) when the machine has one, ``software`` always libx264."""

    def __attrs_post_init__(self) -> None:
        if self.reopen_cap < self.reopen_base:
            raise ValueError("reopen_cap must not be less than reopen_base")

    @property
    def frame_interval(self) -> float:
        return 1.0 / self.fps


@attrs.frozen
class CameraStats:
    """A snapshot of the camera's counters since it was created."""

    frames_read: int = 0
    """Pictures taken from the source, kept or not."""
    frames_captured: int = 0
    """Live pictures converted and offered to viewers (at most ``fps`` a second)."""
    offline_frames: int = 0
    """Offline pictures offered to viewers while the source was down."""
    frames_delivered: int = 0
    """Frames handed to viewers' tracks, summed over viewers."""
    frames_dropped: int = 0
    """Frames a viewer never got because a newer one replaced them before it
    asked (it was slower than the camera), summed over viewers."""
    failures: int = 0
    """Times the source went from working (or never opened) to failed."""
    reopen_attempts: int = 0
    """Backoff waits before trying to open the source again."""
    last_reopen_delay: float | None = None
    source_opens: int = 0
    """Successful opens of the source, first open and reopens included."""
    online: bool = False
    """The source opened and has not failed since."""
    capturing: bool = False
    """The source is open and being read right now."""
    viewers: int = 0
    shared_pictures_encoded: int = 0
    """Pictures the shared VP8 encoder encoded (once each, for all its viewers)."""
    shared_keyframes: int = 0
    source_codec: str | None = None
    """What the open source delivers, e.g. ``H.264 High 3.0 640x480, passed
    through`` or ``mjpeg 640x480``; None until it has opened."""
    pictures_decoded: int = 0
    """Pictures the capture decoded. An H.264 source whose viewers all take
    its own packets decodes none."""
    passthrough_viewers: int = 0
    """Viewers receiving the camera's own H.264 packets."""
    passthrough_packets: int = 0
    """Access units handed to passthrough viewers (once each, for all of them)."""
    passthrough_frames_not_sent: int = 0
    """Frames a passthrough viewer's sender did not take (its way out backed
    up): that viewer went on at the next IDR."""
    h264_encoder: str | None = None
    """The shared H.264 encoder in use (``h264_v4l2m2m``, ``libx264``), once chosen."""
    h264_encoder_hardware: bool = False
    h264_encoder_fallbacks: int = 0
    """Times a hardware encoder failed and software took over."""
    shared_h264_pictures_encoded: int = 0


@attrs.frozen
class MediaPath:
    """How the camera reaches viewers, for ``status`` and ``/metrics``."""

    source: str | None
    """``CameraStats.source_codec``: what the source delivers."""
    passthrough_viewers: int
    h264_encoder: str | None
    """The shared H.264 encoder and why it was chosen, e.g. ``libx264 (software):
    no V4L2 memory-to-memory H.264 encoder on this machine``."""
    h264_encoder_hardware: bool
    h264_encoder_fallbacks: int

    @property
    def lines(self) -> list[str]:
        shown = [f"camera: {self.source or 'not open yet'}"]
        if self.passthrough_viewers:
            shown.append(f"viewers of the camera's own H.264: {self.passthrough_viewers}")
        if self.h264_encoder:
            shown.append(f"H.264 encoder: {self.h264_encoder}")
        if self.h264_encoder_fallbacks:
            shown.append(f"hardware encoder failures: {self.h264_encoder_fallbacks}")
        return shown
