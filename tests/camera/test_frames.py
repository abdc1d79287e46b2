"""Conversion of captured pictures to the frames viewers get."""

from __future__ import annotations

import numpy as np
import pytest

from intercom_fsm.adapters.camera.bgr import I420Converter
from intercom_fsm.adapters.camera.frames import VIDEO_TIME_BASE, Letterbox, Picture, video_frame


def test_a_picture_of_the_right_size_is_only_converted() -> None:
    white = np.full((240, 320, 3), 255, np.uint8)
    pixels = I420Converter(320, 240).convert(white)
    assert pixels.shape == (360, 320)
    assert not pixels.flags.writeable
    assert pixels[:240].min() >= 234  # limited-range white, as swscale makes it


def test_a_wider_picture_is_letterboxed_not_stretched() -> None:
    assert Letterbox.fit(1280, 720, 320, 240) == Letterbox(left=0, top=30, width=320, height=180)
    white = np.full((720, 1280, 3), 255, np.uint8)
    luma = I420Converter(320, 240).convert(white)[:240]
    assert luma[:30].max() <= 16 and luma[210:].max() <= 16
    assert luma[30:210].min() >= 234


@pytest.mark.parametrize("shape", [(480, 640), (480, 640, 4), (100, 50, 3)])
def test_grey_and_bgra_and_odd_sizes_convert(shape: tuple[int, ...]) -> None:
    image = np.full(shape, 128, np.uint8)
    assert I420Converter(320, 240).convert(image).shape == (360, 320)


def test_odd_output_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        I420Converter(321, 240)


def test_each_frame_is_its_own_object_over_shared_pixels() -> None:
    pixels = I420Converter(320, 240).convert(np.zeros((240, 320, 3), np.uint8))
    picture = Picture(sequence=1, captured_at=0.0, pixels=pixels, live=True)
    first, second = video_frame(picture, 9000), video_frame(picture, 18000)
    assert first is not second
    assert (first.pts, second.pts) == (9000, 18000)
    assert first.time_base == VIDEO_TIME_BASE
    assert first.format.name == "yuv420p"
    assert (first.width, first.height) == (320, 240)
    np.testing.assert_array_equal(first.to_ndarray(), pixels)
