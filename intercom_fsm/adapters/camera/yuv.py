"""Decoded pictures (:class:`av.VideoFrame`) turned into I420 at the output
size, without a detour through BGR.

A JPEG decodes to ``yuvj420p`` (or ``yuvj422p``, as many USB cameras send):
full-range YUV. VP8 and H.264 viewers expect limited range, so one swscale
pass converts the range, the chroma layout and the size together; an H.264
picture already in limited-range ``yuv420p`` at the output size is only
copied out of the decoder's padded planes. Measured here at 640x480, per
picture of the bench camera (medians of interleaved runs): FFmpeg's JPEG
decode 0.8 ms and the range conversion 0.22 ms, against OpenCV's decode to
BGR 0.9–2.0 ms (its 900 kB output is fresh memory at every call, and page
faults are dear here) and conversion to I420 0.12–0.18 ms; and no BGR
picture is held.

A picture of another aspect ratio is scaled into a letterbox (black bars), as
:mod:`.bgr` does for BGR pictures.
"""

from __future__ import annotations

from typing import cast

import av
import numpy as np
from av.video.reformatter import ColorRange, Interpolation, VideoReformatter

from intercom_fsm.adapters.camera.frames import I420, PIXEL_FORMAT, Letterbox

BLACK_LUMA = 16
NEUTRAL_CHROMA = 128
FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"})


class FrameToI420:
    """Converts decoded pictures of any format and size to ``width`` x ``height``
    limited-range I420 (read-only numpy arrays, as the hub publishes them)."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("I420 needs an even width and height")
        self._width = width
        self._height = height
        self._reformatter = VideoReformatter()
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}

    def convert(self, frame: av.VideoFrame) -> I420:
        box = self._box(frame.width, frame.height)
        fitted = self._reformat(frame, box.width, box.height)
        if (box.width, box.height) == (self._width, self._height):
            pixels = fitted
        else:
            pixels = self._letterboxed(fitted, box)
        pixels.flags.writeable = False
        return pixels

    def _box(self, width: int, height: int) -> Letterbox:
        box = self._letterboxes.get((width, height))
        if box is None:
            box = Letterbox.fit(width, height, self._width, self._height)
            self._letterboxes[(width, height)] = box
        return box

    def _reformat(self, frame: av.VideoFrame, width: int, height: int) -> I420:
        full_range = frame.format.name in FULL_RANGE_FORMATS or frame.color_range == ColorRange.JPEG
        if width < frame.width:
            interpolation = Interpolation.AREA
        elif width > frame.width:
            interpolation = Interpolation.BILINEAR
        else:  # a range and chroma conversion only: the fast path is exact enough
            interpolation = Interpolation.FAST_BILINEAR
        converted = self._reformatter.reformat(
            frame,
            width=width,
            height=height,
            format=PIXEL_FORMAT,
            src_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG,
            dst_color_range=ColorRange.MPEG,
            interpolation=interpolation,
            threads=1,  # the capture thread is the one thread; swscale's own cost more here
        )
        return cast(I420, converted.to_ndarray())

    def _letterboxed(self, fitted: I420, box: Letterbox) -> I420:
        width, height = self._width, self._height
        canvas = np.empty((height * 3 // 2, width), np.uint8)
        canvas[:height] = BLACK_LUMA
        canvas[height:] = NEUTRAL_CHROMA
        canvas[box.top : box.top + box.height, box.left : box.left + box.width] = fitted[
            : box.height
        ]
        # I420's chroma planes are half size, each stored as rows of half the
        # width: view them as (height/2, width/2) planes to paste into.
        self._paste_chroma(canvas, fitted, box, plane=0)
        self._paste_chroma(canvas, fitted, box, plane=1)
        return canvas

    def _paste_chroma(self, canvas: I420, fitted: I420, box: Letterbox, plane: int) -> None:
        width, height = self._width, self._height
        size = (height // 2) * (width // 2)
        target = canvas[height:].reshape(-1)[plane * size : (plane + 1) * size]
        target = target.reshape(height // 2, width // 2)
        fitted_size = (box.height // 2) * (box.width // 2)
        source = fitted[box.height :].reshape(-1)[plane * fitted_size : (plane + 1) * fitted_size]
        source = source.reshape(box.height // 2, box.width // 2)
        top, left = box.top // 2, box.left // 2
        target[top : top + box.height // 2, left : left + box.width // 2] = source
