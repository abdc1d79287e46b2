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

Who reads what: an ``rtsp://`` camera's H.264 is read on the event loop
(:mod:`.rtsp`, a :class:`LoopFedReader`: no thread between the camera and
the passthrough viewers). Other network streams (and RTSP cameras that one
does not read, or all of them with ``rtsp_reader="ffmpeg"``) and files go
through PyAV (:mod:`.av_reader`), which decodes straight to YUV. So does a V4L2 camera
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

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

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
class News:
    """What a :class:`LoopFedReader` woke its capture thread with."""

    pictures: int
    """Pictures that arrived since the last wait."""
    picture: I420 | None = attrs.field(default=None, eq=False)
    """The newest decoded picture, when pictures are wanted."""
    at: float = 0.0
    """When the newest picture arrived (``time.monotonic()``)."""
    failure: str | None = None
    """Why the stream is over (it ended, or stalled past the read timeout)."""


@runtime_checkable
class LoopFedReader(Protocol):
    """A source read on the event loop (:mod:`.rtsp`): its packets reach the
    passthrough viewers there, and the capture thread hears of it only when
    it must decode, or the source failed. The capture thread calls
    :meth:`wait` where it would call ``grab``, and :meth:`interrupt` is called
    from the loop when the demand or the pictures wanted change."""

    read_interval: float

    @property
    def source_format(self) -> SourceFormat: ...

    @property
    def pictures_decoded(self) -> int: ...

    def set_pictures_wanted(self, wanted: bool) -> None: ...

    def wait(self) -> News: ...

    def interrupt(self) -> None: ...

    def request_keyframe(self) -> bool: ...

    def release(self) -> None: ...


Reader = FrameReader | LoopFedReader


@attrs.frozen
class LoopSide:
    """Where a source read on the loop runs, and who takes its access units there."""

    loop: asyncio.AbstractEventLoop
    deliver: Callable[[AccessUnit, float], None] | None = None
    """The passthrough viewers' fan-out, called on the loop with each access
    unit and its arrival (``time.monotonic()``); None when passthrough is off."""
    restart: Callable[[], None] | None = None
    """Called on the loop before the first access unit of each open goes to
    ``deliver``: the passthrough viewers then wait for its next IDR."""


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
    rtsp_reader: str = "native"
    """``native``: an ``rtsp://`` H.264 camera is read on the event loop
    (:mod:`.rtsp`) when ``loop_side`` is given; ``ffmpeg``: by PyAV, as other streams."""
    loop_side: LoopSide | None = None


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


def open_reader(source: VideoSource, settings: ReaderSettings) -> Reader:
    """Open ``source``; raises :class:`SourceUnavailable` when it cannot."""
    if _read_on_the_loop(source, settings):
        from intercom_fsm.adapters.camera.rtsp.describe import NotReadHere
        from intercom_fsm.adapters.camera.rtsp.reader import RtspReader

        assert isinstance(source, StreamUrl) and settings.loop_side is not None
        try:
            return RtspReader(
                source,
                settings.width,
                settings.height,
                settings.rtsp_transport,
                settings.network_timeout,
                settings.loop_side,
            )
        except NotReadHere as why:
            logger.info("camera %s is read by FFmpeg: %s", source.description, why)
            try:
                return _open_with_pyav_or_opencv(source, settings)
            finally:
                why.release()
    return _open_with_pyav_or_opencv(source, settings)


def _open_with_pyav_or_opencv(source: VideoSource, settings: ReaderSettings) -> FrameReader:
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


def _read_on_the_loop(source: VideoSource, settings: ReaderSettings) -> bool:
    return (
        isinstance(source, StreamUrl)
        and source.url.lower().startswith("rtsp:")
        and settings.rtsp_reader == "native"
        and settings.loop_side is not None
    )
