"""Opening a video source and reading pictures from it, one blocking call at a
time. Only the capture thread uses a reader.

A reader splits reading in two, as OpenCV does: :meth:`FrameReader.grab` takes
the next picture from the source (cheap: no decoding where the codec allows
it), and :meth:`FrameReader.retrieve` gives the last grabbed one as I420. The
capture thread grabs every picture a live source produces, so nothing queues
up in the driver or in FFmpeg, and retrieves only those it delivers. A source
that delivers H.264 also hands over each grabbed access unit as it came
(:meth:`FrameReader.encoded`), for the viewers that take the camera's own
stream; while no viewer needs pictures (:meth:`FrameReader.set_pictures_wanted`)
it decodes nothing.

Who reads what: network streams and files go through PyAV
(:mod:`.av_reader`), which decodes straight to YUV; capture devices through
OpenCV (:mod:`.opencv_reader`), whose V4L2 support the PyAV wheel lacks; the
test pattern is drawn. OpenCV is only imported for the sources that need it.

``read_interval`` says who paces the source: ``0.0`` for live sources, which
hand out pictures at their own rate, and the time between pictures for files
and the test pattern, which would otherwise be read as fast as they decode.
"""

from __future__ import annotations

import logging
from typing import Protocol

import attrs

from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.h264 import AccessUnit, ParameterSets
from intercom_fsm.adapters.camera.sources import StreamUrl, TestPattern, VideoFile, VideoSource

logger = logging.getLogger(__name__)

NETWORK_TIMEOUT = 2.0
"""Default open and read timeout of network streams, in seconds: without one
a stalled stream blocks a read for 30 s."""


class SourceUnavailable(Exception):
    """The source could not be opened. The message is safe to log."""


class UndecodablePicture(Exception):
    """The source gave a picture that cannot be decoded."""


@attrs.frozen
class SourceFormat:
    """What an open source delivers."""

    codec: str
    """FFmpeg's name of the source's codec (``h264``, ``mjpeg``), or ``raw``
    for pictures OpenCV or the adapter itself hand over decoded."""
    width: int
    height: int
    h264: ParameterSets | None = None
    """Set when the source's H.264 can be passed through to viewers as it is."""
    passthrough_refused: str | None = None
    """Why an H.264 source cannot be passed through (B-frames, say)."""

    @property
    def description(self) -> str:
        if self.h264 is not None:
            return f"{self.h264.description} {self.width}x{self.height}, passed through"
        text = f"{self.codec} {self.width}x{self.height}"
        if self.passthrough_refused:
            text += f", not passed through: {self.passthrough_refused}"
        return text


class FrameReader(Protocol):
    @property
    def read_interval(self) -> float: ...

    @property
    def source_format(self) -> SourceFormat: ...

    @property
    def pictures_decoded(self) -> int:
        """Pictures decoded since the source was opened."""
        ...

    def set_pictures_wanted(self, wanted: bool) -> None:
        """Whether anyone needs decoded pictures right now."""
        ...

    def grab(self) -> bool:
        """Take the next picture; False when the source failed or stalled."""
        ...

    def retrieve(self) -> I420 | None:
        """The last grabbed picture; None when there is none to deliver (an
        H.264 decoder waiting for its first IDR). Raises
        :class:`UndecodablePicture` when the picture is broken."""
        ...

    def encoded(self) -> AccessUnit | None:
        """The last grabbed H.264 access unit, when the source can be passed through."""
        ...

    def release(self) -> None: ...


@attrs.frozen
class ReaderSettings:
    width: int
    height: int
    fps: float
    rtsp_transport: str = "tcp"
    network_timeout: float = NETWORK_TIMEOUT


def open_reader(source: VideoSource, settings: ReaderSettings) -> FrameReader:
    """Open ``source``; raises :class:`SourceUnavailable` when it cannot."""
    if isinstance(source, StreamUrl | VideoFile):
        from intercom_fsm.adapters.camera.av_reader import PyAvReader

        return PyAvReader(source, settings)
    from intercom_fsm.adapters.camera.opencv_reader import OpenCvReader, TestPatternReader

    if isinstance(source, TestPattern):
        return TestPatternReader(settings.width, settings.height, settings.fps)
    return OpenCvReader(source, settings.width, settings.height, settings.fps)
