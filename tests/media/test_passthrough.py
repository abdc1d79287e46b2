"""An H.264 camera passed through: viewers that accept its profile get its own
packets (no decode, no encode), every IDR with its SPS/PPS, a joiner from the
next IDR; viewers that cannot take it are served by decoding once. Against
GStreamer's RTSP server (High profile, a 2 s GOP) and real aiortc viewers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import av
import pytest

from bench.h264_offer import HIGH_3_1, answered_profile
from bench.rtsp_source import RtspSourceProcess
from bench.stamp import read_stamp
from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.capture import THREAD_NAME as CAPTURE_THREAD
from intercom_fsm.adapters.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_types
from intercom_fsm.adapters.camera.readers import Reader, ReaderSettings, open_reader
from intercom_fsm.adapters.camera.sources import VideoSource
from tests.camera.conftest import eventually

from .conftest import Device, Viewer, luma_plane

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CAMERA_PROFILE = "64001e"  # what the RTSP server's x264 sends: High 3.0
GOP = 2.0


@pytest.fixture
def encoders_created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every encoder anyone opens through PyAV (aiortc's own included)."""
    created: list[str] = []
    real = av.CodecContext

    class Spy:
        @staticmethod
        def create(codec: Any, mode: Literal["r", "w"] | None = None) -> Any:
            if mode == "w":
                created.append(str(codec))
            return real.create(codec, mode)

    monkeypatch.setattr(av, "CodecContext", Spy)
    return created


def stamps(viewer: Viewer) -> list[int]:
    found = (read_stamp(luma_plane(f)) for f in viewer.frames)
    return [stamp.sequence for stamp in found if stamp is not None]


def settings(camera: RtspSourceProcess, width: int = 320, height: int = 240) -> CameraSettings:
    return CameraSettings(source=camera.url, width=width, height=height, fps=15)


@pytest.mark.timeout(60)
async def test_viewers_of_the_cameras_profile_get_its_packets_untouched(
    rtsp_camera: RtspSourceProcess,
    make_device: Callable[..., Device],
    encoders_created: list[str],
) -> None:
    device = make_device(settings(rtsp_camera))
    await device.camera.open()
    first = Viewer(("video/H264", "video/VP8"), h264_profile=HIGH_3_1)
    await device.connect(first)
    await eventually(lambda: len(stamps(first)) >= 10, 20, "the first viewer's pictures")

    late = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    joined = time.monotonic()
    await device.connect(late)
    await eventually(lambda: bool(late.frames), GOP + 3, "the joiner's first picture")
    first_picture = time.monotonic() - joined
    # Two GOPs more: every IDR in that time is checked.
    await asyncio.sleep(2 * GOP + 0.5)

    # The answer tells what comes: the camera's own profile and level.
    assert answered_profile(first.answer_sdp) == CAMERA_PROFILE
    assert answered_profile(late.answer_sdp) == CAMERA_PROFILE
    stats = device.camera.stats
    assert stats.passthrough_viewers == 2
    assert device.camera.media_path().lines[:2] == [
        "camera: H.264 High 3.0 640x480, passed through",
        "viewers of the camera's own H.264: 2",
    ]
    # No decode, no encode: not ours, not aiortc's.
    assert encoders_created == []
    assert stats.pictures_decoded == 0 and stats.frames_captured == 0
    assert stats.shared_pictures_encoded == 0 and stats.shared_h264_pictures_encoded == 0
    # The camera's pictures, at the camera's size (not VIDEO_WIDTH x VIDEO_HEIGHT).
    assert {(f.width, f.height) for f in late.frames} == {(640, 480)}
    assert len(stamps(late)) >= 0.9 * len(late.frames) > 30
    for peer in (1, 2):
        sent = device.sent[peer]
        keyframes = [nal_types(bytes(p)) for p in sent if p.is_keyframe]
        # Each viewer starts at an IDR; the camera sends SPS/PPS only in its
        # SDP, and every IDR goes out with them in front.
        assert sent[0].is_keyframe
        assert len(keyframes) >= 2
        for types in keyframes:
            assert NAL_SPS in types and NAL_PPS in types
            assert types.index(NAL_SPS) < types.index(NAL_IDR)
            assert types.index(NAL_PPS) < types.index(NAL_IDR)
    # The joiner started at the camera's next IDR: within one GOP (and ICE).
    assert first_picture < GOP + 1.5


@pytest.mark.timeout(60)
async def test_viewers_that_cannot_take_it_share_one_decode(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    # At the camera's size, so that the stamps survive (a scaled stamp is not read).
    device = make_device(settings(rtsp_camera, 640, 480))
    await device.camera.open()
    passthrough = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    await device.connect(passthrough)
    await eventually(lambda: len(passthrough.frames) >= 5, 20, "pass-through pictures")
    assert device.camera.stats.pictures_decoded == 0

    vp8 = Viewer(("video/VP8",))
    baseline = Viewer(("video/H264",))  # aiortc's own offer: Constrained Baseline only
    await device.connect(vp8)
    await device.connect(baseline)
    await eventually(
        lambda: len(stamps(vp8)) >= 10 and len(stamps(baseline)) >= 10, 20, "transcoded pictures"
    )
    assert answered_profile(baseline.answer_sdp) in ("42001f", "42e01f")  # Baseline, not High
    before = device.camera.stats
    await asyncio.sleep(2.0)
    after = device.camera.stats
    read = after.frames_read - before.frames_read
    decoded = after.pictures_decoded - before.pictures_decoded
    captured = after.frames_captured - before.frames_captured
    assert read >= 20
    # Each camera picture decoded once, whatever the number of viewers...
    assert decoded <= read + 1
    # ...and encoded once per codec.
    assert captured >= 20
    assert after.shared_pictures_encoded - before.shared_pictures_encoded <= captured + 1
    assert after.shared_h264_pictures_encoded - before.shared_h264_pictures_encoded <= captured + 1
    assert after.passthrough_viewers == 1
    assert after.passthrough_packets - before.passthrough_packets >= read - 1

    # Once only the pass-through viewer is left, nothing is decoded any more.
    await vp8.close()
    await baseline.close()
    await device.peers.close(2)
    await device.peers.close(3)
    await eventually(lambda: device.camera.stats.viewers == 1, 5, "two viewers gone")
    read = device.camera.stats.frames_read
    # The capture may be amid a picture it was asked for: the one after it is not.
    await eventually(lambda: device.camera.stats.frames_read >= read + 2, 2, "two more packets")
    settled = device.camera.stats.pictures_decoded
    frames = len(passthrough.frames)
    await asyncio.sleep(1.0)
    assert device.camera.stats.pictures_decoded == settled
    assert len(passthrough.frames) >= frames + 10


@pytest.mark.timeout(60)
async def test_passthrough_viewers_see_the_offline_picture_and_the_camera_again(
    rtsp_available: None, make_device: Callable[..., Device]
) -> None:
    with RtspSourceProcess(640, 480, 15) as rtsp:
        device = make_device(
            CameraSettings(
                source=rtsp.url,
                width=320,
                height=240,
                fps=15,
                network_timeout=1.0,
                reopen_base=0.5,
                reopen_cap=1.0,
            )
        )
        await device.camera.open()
        viewer = Viewer(("video/H264",), h264_profile=HIGH_3_1)
        await device.connect(viewer)
        await eventually(lambda: len(stamps(viewer)) >= 5, 20, "the camera's pictures")
        rtsp.pause()
        seen = len(viewer.frames)
        # The offline picture, in H.264 of its own, at the configured size.
        await eventually(
            lambda: any(f.width == 320 for f in viewer.frames[seen:]), 10, "the offline picture"
        )
        offline = [f for f in viewer.frames[seen:] if f.width == 320]
        assert all(read_stamp(luma_plane(f)) is None for f in offline)
        rtsp.resume()
        back = len(viewer.frames)

        def camera_pictures_since(index: int) -> int:
            found = (read_stamp(luma_plane(f)) for f in viewer.frames[index:])
            return sum(stamp is not None for stamp in found)

        await eventually(lambda: camera_pictures_since(back) >= 5, 15, "the camera again")
        assert device.camera.stats.passthrough_viewers == 1
        assert viewer.pc.connectionState == "connected"


class AskableCamera:
    """The real reader of the RTSP camera, as if it were a V4L2 H.264 camera
    that can be asked for keyframes: the asks are recorded with the thread
    they come on."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self.asked_on: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def request_keyframe(self) -> bool:
        self.asked_on.append(threading.current_thread().name)
        return True


@pytest.mark.timeout(60)
async def test_a_camera_that_can_be_asked_for_keyframes_is_asked_when_a_viewer_joins(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    opened: list[AskableCamera] = []

    def open_askable(source: VideoSource, reader_settings: ReaderSettings) -> Reader:
        camera = AskableCamera(open_reader(source, reader_settings))
        opened.append(camera)
        return camera

    device = make_device(settings(rtsp_camera), open_source=open_askable)
    await device.camera.open()
    await eventually(lambda: bool(opened), 10, "the camera opened")
    assert opened[0].asked_on == []
    viewer = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    await device.connect(viewer)
    await eventually(lambda: bool(viewer.frames), GOP + 3, "the viewer's first picture")
    # Asked on the capture thread, which owns the device, never on the loop.
    assert opened[0].asked_on[:1] == [CAPTURE_THREAD]
