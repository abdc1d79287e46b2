"""What an SPS says (:mod:`intercom_fsm.adapters.camera.h264_sps`), checked
against libx264's own streams as FFmpeg decodes them: the picture size
(cropping included), whether pictures come out of order, and slice types."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_fsm.adapters.camera.h264 import split_annexb
from intercom_fsm.adapters.camera.h264_sps import B_SLICE, parse_sps, slice_type, unescape


def encoded(width: int, height: int, profile: str, bframes: int) -> list[bytes]:
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 15)
    codec.profile = profile
    codec.options = {"preset": "veryfast", "x264-params": f"bframes={bframes}:b-adapt=0"}
    data = b""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (height * 3 // 2, width), dtype=np.uint8)
    for index in range(10):
        picture = np.roll(base, index * 3, axis=1)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = index
        data += b"".join(bytes(p) for p in codec.encode(frame))
    data += b"".join(bytes(p) for p in codec.encode(None))
    return split_annexb(data)


@pytest.mark.parametrize(
    ("width", "height", "profile", "bframes"),
    [
        (640, 480, "High", 0),
        (1920, 1080, "Main", 0),  # 1088 coded, cropped to 1080
        (1278, 718, "High", 0),  # cropped on both axes
        (320, 240, "High", 2),
        (1280, 720, "Baseline", 0),
    ],
)
def test_the_size_and_the_reordering_are_what_ffmpeg_finds(
    width: int, height: int, profile: str, bframes: int
) -> None:
    units = encoded(width, height, profile, bframes)
    sps = next(u for u in units if u[0] & 0x1F == 7)
    info = parse_sps(sps)
    decoder = av.CodecContext.create("h264", "r")
    assert isinstance(decoder, av.VideoCodecContext)
    stream = b"".join(b"\x00\x00\x00\x01" + u for u in units)
    frames = [f for p in decoder.parse(stream) for f in decoder.decode(p)]
    frames += decoder.decode(None)
    assert frames
    assert (info.width, info.height) == (frames[0].width, frames[0].height) == (width, height)
    assert info.reorders == bool(bframes) == bool(decoder.has_b_frames)
    types = {slice_type(u) for u in units} - {None}
    assert (B_SLICE in types) == bool(bframes)


def test_a_truncated_or_foreign_unit_is_a_value_error() -> None:
    sps = next(u for u in encoded(640, 480, "High", 0) if u[0] & 0x1F == 7)
    with pytest.raises(ValueError, match="ends early"):
        parse_sps(sps[:6])
    with pytest.raises(ValueError, match="not a sequence parameter set"):
        parse_sps(b"\x68\xee\x3c\x80")


def test_emulation_prevention_bytes_are_removed() -> None:
    assert unescape(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"
    assert unescape(b"\x12\x34") == b"\x12\x34"


@given(st.binary(min_size=1, max_size=64))
def test_any_bytes_are_an_sps_or_a_value_error(data: bytes) -> None:
    unit = bytes([0x67]) + data
    try:
        info = parse_sps(unit)
    except ValueError:
        return
    assert info.width > 0 and info.height > 0
    assert slice_type(bytes([0x65]) + data) in (None, 0, 1, 2, 3, 4)
