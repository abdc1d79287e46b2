"""Opening a video source and reading pictures from it, one blocking call at a
time. Only the capture thread uses a reader.

A reader splits reading in two, as OpenCV does: :meth:`FrameReader.grab` takes
the next picture from the source (cheap: no colour conversion), and
:meth:`FrameReader.retrieve` decodes the last grabbed one. The capture thread
grabs every picture a live source produces, so nothing queues up in the
driver or in FFmpeg, and retrieves only those it delivers.

``read_interval`` says who paces the source: ``0.0`` for live sources, which
hand out pictures at their own rate, and the time between pictures for files
and the test pattern, which would otherwise be read as fast as they decode.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import cv2
import numpy as np

from intercom_fsm.adapters.camera.pictures import Image, TestPatternPainter, as_image
from intercom_fsm.adapters.camera.sources import (
    CameraIndex,
    DevicePath,
    StreamUrl,
    TestPattern,
    VideoFile,
    VideoSource,
)

logger = logging.getLogger(__name__)

NETWORK_TIMEOUT_MS = 2000
"""Open and read timeout for network streams: without it a stalled stream
blocks ``read()`` for 30 s."""

MAX_FILE_FPS = 240.0
"""A file claiming a higher rate (or none) is played at the configured fps."""


class SourceUnavailable(Exception):
    """The source could not be opened. The message is safe to log."""


class FrameReader(Protocol):
    @property
    def read_interval(self) -> float: ...

    def grab(self) -> bool:
        """Take the next picture; False when the source failed or stalled."""
        ...

    def retrieve(self) -> Image | None:
        """The last grabbed picture, or None when it cannot be decoded."""
        ...

    def release(self) -> None: ...


class TestPatternReader:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int, height: int, fps: float) -> None:
        self._painter = TestPatternPainter(width, height)
        self._interval = 1.0 / fps

    @property
    def read_interval(self) -> float:
        return self._interval

    def grab(self) -> bool:
        return True

    def retrieve(self) -> Image:
        return self._painter.paint(time.time())

    def release(self) -> None:
        pass


class OpenCvReader:
    """A camera, a file or a network stream, through ``cv2.VideoCapture``.

    A file is looped: at its end the reader rewinds (or reopens it when the
    container cannot seek) and goes on. At the end of anything else the source
    has failed."""

    def __init__(
        self,
        source: CameraIndex | DevicePath | VideoFile | StreamUrl,
        width: int,
        height: int,
        fps: float,
    ) -> None:
        self._source = source
        self._capture = _open_capture(source)
        if isinstance(source, CameraIndex | DevicePath):
            _prefer_size(self._capture, width, height, fps)
        self._grabbed_since_start = 0
        self._interval = 0.0
        if isinstance(source, VideoFile):
            native = float(self._capture.get(cv2.CAP_PROP_FPS))
            rate = native if 0.0 < native <= MAX_FILE_FPS else fps
            self._interval = 1.0 / rate

    @property
    def read_interval(self) -> float:
        return self._interval

    def grab(self) -> bool:
        if self._capture.grab():
            self._grabbed_since_start += 1
            return True
        if not isinstance(self._source, VideoFile) or self._grabbed_since_start == 0:
            return False
        return self._loop_file()

    def _loop_file(self) -> bool:
        self._grabbed_since_start = 0
        if self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0) and self._capture.grab():
            self._grabbed_since_start = 1
            return True
        self._capture.release()
        try:
            self._capture = _open_capture(self._source)
        except SourceUnavailable:
            return False
        if self._capture.grab():
            self._grabbed_since_start = 1
            return True
        return False

    def retrieve(self) -> Image | None:
        ok, image = self._capture.retrieve()
        if not ok or image is None or image.dtype != np.uint8:
            return None
        return as_image(image)

    def release(self) -> None:
        self._capture.release()


def _open_capture(source: CameraIndex | DevicePath | VideoFile | StreamUrl) -> cv2.VideoCapture:
    match source:
        case StreamUrl(url=url):
            capture = cv2.VideoCapture(
                url,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    NETWORK_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    NETWORK_TIMEOUT_MS,
                ],
            )
        case VideoFile(path=path):
            capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        case CameraIndex(index=index):
            capture = cv2.VideoCapture(index)
        case DevicePath(path=path):
            capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise SourceUnavailable(f"cannot open {source.description}")
    return capture


def _prefer_size(capture: cv2.VideoCapture, width: int, height: int, fps: float) -> None:
    """Ask a capture device for about the size and rate it will be scaled to, and
    for the smallest driver queue. Drivers pick the nearest mode they have, or
    ignore the request; either is fine."""
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    capture.set(cv2.CAP_PROP_FPS, fps)


def open_reader(source: VideoSource, width: int, height: int, fps: float) -> FrameReader:
    """Open ``source``; raises :class:`SourceUnavailable` when it cannot."""
    if isinstance(source, TestPattern):
        return TestPatternReader(width, height, fps)
    try:
        return OpenCvReader(source, width, height, fps)
    except cv2.error as error:
        # OpenCV's message may quote the URL, credentials included.
        logger.debug("OpenCV refused %s: %s", source.description, type(error).__name__)
        raise SourceUnavailable(f"cannot open {source.description}") from None
