"""Pictures in BGR (OpenCV's captures, the test pattern, the offline frame)
turned into I420 at the output size.

Only sources that OpenCV opens and the pictures the adapter draws itself come
this way; everything PyAV reads is converted by :mod:`.yuv` without ever
being BGR. Importing this module loads OpenCV (about 16 MB of memory), which
is why :mod:`.frames` does not.
"""

from __future__ import annotations

import numpy as np

from intercom_fsm.adapters.camera.frames import I420, Letterbox
from intercom_fsm.adapters.camera.opencv import cv2
from intercom_fsm.adapters.camera.pictures import Image, as_image


class I420Converter:
    """Scales a BGR picture to the output size and converts it to I420."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("I420 needs an even width and height")
        self._width = width
        self._height = height
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}

    def convert(self, image: Image) -> I420:
        bgr = _as_bgr(image)
        source_height, source_width = bgr.shape[:2]
        if (source_width, source_height) != (self._width, self._height):
            bgr = self._scaled(bgr, source_width, source_height)
        pixels = as_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))
        pixels.flags.writeable = False
        return pixels

    def _scaled(self, bgr: Image, source_width: int, source_height: int) -> Image:
        box = self._letterboxes.get((source_width, source_height))
        if box is None:
            box = Letterbox.fit(source_width, source_height, self._width, self._height)
            self._letterboxes[(source_width, source_height)] = box
        shrinking = box.width < source_width
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        scaled = as_image(cv2.resize(bgr, (box.width, box.height), interpolation=interpolation))
        if (box.width, box.height) == (self._width, self._height):
            return scaled
        canvas = np.zeros((self._height, self._width, 3), np.uint8)
        canvas[box.top : box.top + box.height, box.left : box.left + box.width] = scaled
        return canvas


def _as_bgr(image: Image) -> Image:
    if image.ndim == 2:
        return as_image(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.shape[2] == 4:
        return as_image(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR))
    return image
