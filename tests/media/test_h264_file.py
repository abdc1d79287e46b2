"""H.264 files: MP4 samples (``avcC``, NAL units behind lengths) are passed
through as Annex-B with SPS/PPS before each IDR, looped at the file's rate; a
file with B-frames is decoded and re-encoded instead."""

from __future__ import annotations

import fractions
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from bench.h264_offer import HIGH_3_1, answered_profile
from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_types
from tests.camera.conftest import eventually

from .conftest import Device, Viewer

pytestmark = pytest.mark.asyncio
FPS = 10


def write_h264(path: Path, b_frames: int) -> Path:
    """Two seconds of 320x240 High-profile H.264 in MP4, an IDR every second."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.profile = "High"
        stream.codec_context.gop_size = FPS
        stream.codec_context.max_b_frames = b_frames
        stream.codec_context.options = {"bf": str(b_frames), "x264-params": "scenecut=0"}
        for index in range(2 * FPS):
            picture = np.full((240, 320, 3), 40 + 8 * index, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            frame.time_base = fractions.Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.timeout(40)
async def test_an_mp4_file_is_passed_through_in_annexb(
    tmp_path: Path, make_device: Callable[..., Device]
) -> None:
    video = write_h264(tmp_path / "door.mp4", b_frames=0)
    device = make_device(CameraSettings(source=str(video), width=320, height=240, fps=FPS))
    await device.camera.open()
    viewer = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    await device.connect(viewer)
    # Past the end of the file: it loops.
    await eventually(lambda: len(viewer.frames) >= 3 * FPS, 20, "three seconds of the file")
    assert answered_profile(viewer.answer_sdp) == device.camera.passthrough_profile
    stats = device.camera.stats
    assert stats.passthrough_viewers == 1 and stats.pictures_decoded == 0
    assert stats.source_codec is not None and "passed through" in stats.source_codec
    keyframes = [nal_types(bytes(p)) for p in device.sent[1] if p.is_keyframe]
    assert len(keyframes) >= 3
    for types in keyframes:
        assert types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR)


@pytest.mark.timeout(40)
async def test_a_file_with_b_frames_is_transcoded(
    tmp_path: Path, make_device: Callable[..., Device]
) -> None:
    video = write_h264(tmp_path / "door.mp4", b_frames=2)
    device = make_device(CameraSettings(source=str(video), width=320, height=240, fps=FPS))
    await device.camera.open()
    viewer = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    await device.connect(viewer)
    await eventually(lambda: len(viewer.frames) >= FPS, 20, "pictures")
    assert answered_profile(viewer.answer_sdp) in ("42001f", "42e01f")
    stats = device.camera.stats
    assert stats.source_codec == "h264 320x240, not passed through: the stream has B-frames"
    assert stats.passthrough_viewers == 0 and stats.shared_h264_pictures_encoded > 0
