"""Pictures the adapter draws itself: the test pattern and the offline frame.

Both are drawn straight at the configured size in BGR, the layout OpenCV
captures in, so they go through the same conversion as camera frames. They are
cheap: the static parts are drawn once, each frame only adds a bar and text.
"""

from __future__ import annotations

import time
from typing import cast

import numpy as np
from numpy.typing import NDArray

from intercom_fsm.adapters.camera.opencv import cv2

Image = NDArray[np.uint8]


def as_image(matrix: cv2.typing.MatLike) -> Image:
    """OpenCV's result typed as what it is: 8-bit in gives 8-bit out."""
    return cast(Image, matrix)


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_BAR_COLOURS = (  # BGR: white, yellow, cyan, green, magenta, red, blue
    (235, 235, 235),
    (16, 235, 235),
    (235, 235, 16),
    (16, 235, 16),
    (235, 16, 235),
    (16, 16, 235),
    (235, 16, 16),
)
BAR_SWEEP_SECONDS = 4.0
"""The moving bar crosses the picture once in this time."""

OFFLINE_BACKGROUND = (40, 32, 32)
OFFLINE_TITLE = "CAMERA OFFLINE"


def _font_scale(width: int, text: str, share: float, thickness: int) -> float:
    """The scale at which ``text`` fills ``share`` of the width."""
    (text_width, _), _ = cv2.getTextSize(text, _FONT, 1.0, thickness)
    return max(0.3, share * width / max(1, text_width))


def _put_centred(image: Image, text: str, y: int, scale: float, thickness: int) -> None:
    (text_width, _), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x = max(0, (image.shape[1] - text_width) // 2)
    cv2.putText(image, text, (x, y), _FONT, scale, _WHITE, thickness, cv2.LINE_AA)


def wall_clock_text(now: float, with_millis: bool) -> str:
    local = time.localtime(now)
    text = time.strftime("%Y-%m-%d %H:%M:%S", local)
    return f"{text}.{int(now * 1000) % 1000:03d}" if with_millis else text


class TestPatternPainter:
    """Colour bars, a bar sweeping left to right, the wall-clock time and a
    frame counter: motion and a visible clock show at a glance that the stream
    is live and how late it is."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int, height: int) -> None:
        self._width = width
        self._height = height
        self._background = np.zeros((height, width, 3), np.uint8)
        for index, colour in enumerate(_BAR_COLOURS):
            left = index * width // len(_BAR_COLOURS)
            right = (index + 1) * width // len(_BAR_COLOURS)
            self._background[: height * 2 // 3, left:right] = colour
        self._background[height * 2 // 3 :] = (32, 32, 32)
        self._bar_width = max(2, width // 40)
        self._scale = _font_scale(width, "0000-00-00 00:00:00.000", 0.9, 1)
        self._thickness = max(1, round(self._scale * 1.5))
        self._frames = 0

    def paint(self, now: float) -> Image:
        image = self._background.copy()
        phase = (now % BAR_SWEEP_SECONDS) / BAR_SWEEP_SECONDS
        left = int(phase * (self._width - self._bar_width))
        image[: self._height * 2 // 3, left : left + self._bar_width] = (0, 0, 0)
        self._frames += 1
        line = max(1, int(self._height / 9))
        _put_centred(
            image, wall_clock_text(now, True), self._height - line, self._scale, self._thickness
        )
        _put_centred(
            image, f"frame {self._frames}", self._height - 2 * line, self._scale, self._thickness
        )
        return image


class OfflinePainter:
    """A dark picture that says the camera is offline, with the time, so a
    viewer can tell a camera fault from a frozen stream.

    The picture only changes once a second; the caller may reuse it for
    every frame within the same second."""

    def __init__(self, width: int, height: int) -> None:
        self._width = width
        self._height = height
        self._background = np.empty((height, width, 3), np.uint8)
        self._background[:] = OFFLINE_BACKGROUND
        title_scale = _font_scale(width, OFFLINE_TITLE, 0.8, 2)
        _put_centred(
            self._background,
            OFFLINE_TITLE,
            height * 2 // 5,
            title_scale,
            max(1, round(title_scale * 2)),
        )
        self._scale = _font_scale(width, "0000-00-00 00:00:00", 0.7, 1)
        self._thickness = max(1, round(self._scale * 1.5))
        note_scale = self._scale * 0.8
        _put_centred(self._background, "reconnecting...", height * 4 // 5, note_scale, 1)

    @staticmethod
    def key(now: float) -> int:
        """Pictures painted at two times with the same key are identical."""
        return int(now)

    def paint(self, now: float) -> Image:
        image = self._background.copy()
        _put_centred(
            image, wall_clock_text(now, False), self._height * 3 // 5, self._scale, self._thickness
        )
        return image
