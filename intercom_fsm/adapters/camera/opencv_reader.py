"""The sources OpenCV reads: capture devices (V4L2 cameras by index or path),
and the test pattern, which is drawn with OpenCV. Their pictures are BGR and
are converted once to I420 (:mod:`.bgr`).

OpenCV's V4L2 reader waits 10 s for a picture before it gives up, a setting
it takes from its environment (``OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT``, whole
seconds) at its first wait: the reader sets it to the daemon's read timeout
before its first device opens, unless the operator set it.
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np

from intercom_fsm.adapters.camera.bgr import I420Converter
from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.h264 import AccessUnit
from intercom_fsm.adapters.camera.opencv import cv2
from intercom_fsm.adapters.camera.pictures import TestPatternPainter, as_image
from intercom_fsm.adapters.camera.readers import (
    SourceFormat,
    SourceUnavailable,
    UndecodablePicture,
)
from intercom_fsm.adapters.camera.sources import CameraIndex, DevicePath

logger = logging.getLogger(__name__)

SELECT_TIMEOUT_VARIABLE = "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT"


class TestPatternReader:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int, height: int, fps: float) -> None:
        self._painter = TestPatternPainter(width, height)
        self._converter = I420Converter(width, height)
        self._interval = 1.0 / fps
        self.source_format = SourceFormat("raw", width, height)
        self.pictures_decoded = 0

    @property
    def read_interval(self) -> float:
        return self._interval

    def set_pictures_wanted(self, wanted: bool) -> None:
        pass

    failure = None
    """A drawn picture never fails."""

    def grab(self) -> bool:
        return True

    def retrieve(self) -> I420:
        return self._converter.convert(self._painter.paint(time.time()))

    def encoded(self) -> AccessUnit | None:
        return None

    def request_keyframe(self) -> bool:
        return False

    def release(self) -> None:
        pass


class OpenCvReader:
    """A capture device through ``cv2.VideoCapture``. At the end of its
    pictures the device has failed (unplugged, or its driver gave up)."""

    def __init__(
        self,
        source: CameraIndex | DevicePath,
        width: int,
        height: int,
        fps: float,
        read_timeout: float,
    ) -> None:
        self._source = source
        os.environ.setdefault(SELECT_TIMEOUT_VARIABLE, str(max(1, math.ceil(read_timeout))))
        try:
            self._capture = _open_capture(source)
        except cv2.error as error:
            # OpenCV's message may quote the device path; keep it to the logs' debug level.
            logger.debug("OpenCV refused %s: %s", source.description, type(error).__name__)
            raise SourceUnavailable(f"cannot open {source.description}") from None
        _prefer_size(self._capture, width, height, fps)
        self._converter = I420Converter(width, height)
        self.source_format = SourceFormat(
            "raw",
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.pictures_decoded = 0

    @property
    def read_interval(self) -> float:
        return 0.0

    def set_pictures_wanted(self, wanted: bool) -> None:
        pass

    failure = None
    """OpenCV does not say why it got no picture."""

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> I420:
        ok, image = self._capture.retrieve()
        if not ok or image is None or image.dtype != np.uint8:
            raise UndecodablePicture
        self.pictures_decoded += 1
        return self._converter.convert(as_image(image))

    def encoded(self) -> AccessUnit | None:
        return None

    def request_keyframe(self) -> bool:
        return False

    def release(self) -> None:
        self._capture.release()


def _open_capture(source: CameraIndex | DevicePath) -> cv2.VideoCapture:
    match source:
        # V4L2 named: given a path, OpenCV would first hand the device to
        # its FFmpeg backend, which reads it as a file.
        case CameraIndex(index=index):
            capture = cv2.VideoCapture(index, cv2.CAP_V4L2)
        case DevicePath(path=path):
            capture = cv2.VideoCapture(path, cv2.CAP_V4L2)
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
