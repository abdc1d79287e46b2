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
(:mod:`.av_reader`), which decodes straight to YUV. So does a V4L2 camera
that offers a compressed format (:func:`device_stream`): its own H.264 when it
has it and passthrough is on (its packets then reach the viewers untouched),
otherwise its MJPEG, decoded straight to I420. A camera that offers neither
(raw YUYV, say), or a device that does not answer as V4L2, goes through
OpenCV (:mod:`.opencv_reader`); the test pattern is drawn. OpenCV is only
imported for the sources that need it.

``read_interval`` says who paces the source: ``0.0`` for live sources, which
hand out pictures at their own rate, and the time between pictures for files
and the test pattern, which would otherwise be read as fast as they decode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs

from intercom_fsm.adapters.camera import v4l2
from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.h264 import AccessUnit, ParameterSets
from intercom_fsm.adapters.camera.sources import (
    CameraIndex,
    DevicePath,
    StreamUrl,
    TestPattern,
    VideoFile,
    VideoSource,
)

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

    @property
    def failure(self) -> str | None:
        """Why the last :meth:`grab` failed, where the reader can tell
        ("No such device", "nothing for 2 s"); None where it cannot."""
        ...

    def retrieve(self) -> I420 | None:
        """The last grabbed picture; None when there is none to deliver (an
        H.264 decoder waiting for its first IDR). Raises
        :class:`UndecodablePicture` when the picture is broken."""
        ...

    def encoded(self) -> AccessUnit | None:
        """The last grabbed H.264 access unit, when the source can be passed through."""
        ...

    def request_keyframe(self) -> bool:
        """Ask the source for an IDR soon; False when it cannot be asked."""
        ...

    def release(self) -> None: ...


@attrs.frozen
class ReaderSettings:
    width: int
    height: int
    fps: float
    rtsp_transport: str = "tcp"
    network_timeout: float = NETWORK_TIMEOUT
    """Open and read timeout of network streams and V4L2 cameras read by PyAV."""
    prefer_h264: bool = True
    """A camera offering both takes H.264 (to pass it through) over MJPEG."""


@attrs.frozen
class DeviceStream:
    """A V4L2 camera read through PyAV in a compressed format it offers."""

    source: CameraIndex | DevicePath
    node: str
    input_format: str
    """FFmpeg's ``input_format``: ``h264`` or ``mjpeg``."""

    @property
    def description(self) -> str:
        return self.source.description


def device_node(source: CameraIndex | DevicePath) -> str:
    return source.path if isinstance(source, DevicePath) else f"/dev/video{source.index}"


def device_stream(
    source: CameraIndex | DevicePath,
    prefer_h264: bool,
    formats_of: Callable[[str], v4l2.CameraFormats | None] = v4l2.camera_formats,
) -> DeviceStream | None:
    """How PyAV should read the camera; None when OpenCV should."""
    node = device_node(source)
    offered = formats_of(node)
    if offered is None:
        return None
    if offered.h264 and (prefer_h264 or not offered.mjpeg):
        return DeviceStream(source, node, "h264")
    if offered.mjpeg:
        return DeviceStream(source, node, "mjpeg")
    return None


def open_reader(source: VideoSource, settings: ReaderSettings) -> FrameReader:
    """Open ``source``; raises :class:`SourceUnavailable` when it cannot."""
    stream: StreamUrl | VideoFile | DeviceStream | None = None
    if isinstance(source, StreamUrl | VideoFile):
        stream = source
    elif isinstance(source, CameraIndex | DevicePath):
        stream = device_stream(source, settings.prefer_h264)
    if stream is not None:
        from intercom_fsm.adapters.camera.av_reader import PyAvReader

        return PyAvReader(stream, settings)
    from intercom_fsm.adapters.camera.opencv_reader import OpenCvReader, TestPatternReader

    if isinstance(source, TestPattern):
        return TestPatternReader(settings.width, settings.height, settings.fps)
    assert isinstance(source, CameraIndex | DevicePath)
    return OpenCvReader(
        source, settings.width, settings.height, settings.fps, settings.network_timeout
    )
