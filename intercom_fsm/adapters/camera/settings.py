"""The camera adapter's settings and the counters it reports."""

from __future__ import annotations

import attrs

MAX_FPS = 120.0


def _even_size(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 16 or value > 8192 or value % 2:
        raise ValueError(f"{attribute.name} must be an even number from 16 to 8192, not {value}")


def _frame_rate(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value <= MAX_FPS:
        raise ValueError(f"{attribute.name} must be more than 0 and at most {MAX_FPS:g}")


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
    """The shared encoder's ceiling in bit/s: its high layer, which viewers get
    when their path carries it (see :mod:`.layers`); None: a default for the
    size and rate."""

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
