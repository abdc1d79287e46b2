"""What viewers see while the camera is down: a picture that says so, with
a clock, redrawn once a second, and the same picture in H.264 for the viewers
that take the camera's own H.264 (:class:`~.passthrough.OfflineEncoder`).

It is drawn with OpenCV, which is loaded only once a source has failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.h264 import AccessUnit
from intercom_fsm.adapters.camera.passthrough import OfflineEncoder

if TYPE_CHECKING:
    from intercom_fsm.adapters.camera.bgr import I420Converter
    from intercom_fsm.adapters.camera.pictures import OfflinePainter


class OfflinePicture:
    def __init__(self, width: int, height: int, fps: float) -> None:
        self._width, self._height, self._fps = width, height, fps
        self._painter: tuple[OfflinePainter, I420Converter] | None = None
        self._drawn: tuple[int, I420] | None = None
        self._encoder: OfflineEncoder | None = None

    def pixels(self, wall_clock: float) -> I420:
        """The picture for ``wall_clock`` (``time.time()``), drawn once a second."""
        key = int(wall_clock)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        if self._painter is None:
            from intercom_fsm.adapters.camera.bgr import I420Converter
            from intercom_fsm.adapters.camera.pictures import OfflinePainter

            self._painter = (
                OfflinePainter(self._width, self._height),
                I420Converter(self._width, self._height),
            )
        painter, converter = self._painter
        pixels = converter.convert(painter.paint(wall_clock))
        self._drawn = (key, pixels)
        return pixels

    def access_unit(self, pixels: I420) -> AccessUnit | None:
        """``pixels`` as an H.264 IDR for the passthrough viewers."""
        if self._encoder is None:
            self._encoder = OfflineEncoder(self._width, self._height, self._fps)
        return self._encoder.encode(pixels)
