"""An RTSP camera read on the event loop (:mod:`intercom_fsm.adapters.camera.rtsp`),
against GStreamer's RTSP server: its passed-through pictures never wake the
capture thread; it signs in with Basic or Digest, and a wrong password fails
without showing it; parameter sets sent only in band, a camera with
B-frames, and a camera that is not H.264 (left to FFmpeg)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.h264_offer import HIGH_3_1
from bench.rtsp_source import RtspSourceProcess
from bench.stamp import read_stamp
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.capture import THREAD_NAME as CAPTURE_THREAD
from intercom_fsm.events import CameraFailed, CameraOpened
from tests.camera.conftest import EventRecorder, eventually, viewer

from .conftest import Device, Viewer, luma_plane

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

USER, PASSWORD = "door", "p@ss:w0rd/"


def stamped(frame: object) -> bool:
    import av

    assert isinstance(frame, av.VideoFrame)
    return read_stamp(luma_plane(frame)) is not None


def wakeups(thread_name: str) -> int:
    """Voluntary context switches of this process's thread of that name so far."""
    thread = next(t for t in threading.enumerate() if t.name == thread_name)
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


async def opened_camera(url: str, **settings: object) -> tuple[Camera, EventRecorder]:
    recorder = EventRecorder()
    camera = Camera(CameraSettings(source=url, fps=15, **settings), recorder)  # type: ignore[arg-type]
    await camera.open()
    return camera, recorder


@pytest.mark.timeout(60)
async def test_passed_through_pictures_never_wake_the_capture_thread(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    device = make_device(CameraSettings(source=rtsp_camera.url, width=320, height=240, fps=15))
    await device.camera.open()
    watcher = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    await device.connect(watcher)
    await eventually(lambda: len(watcher.frames) >= 10, 20, "the viewer's pictures")
    before_pictures, before_wakeups = len(watcher.frames), wakeups(CAPTURE_THREAD)
    await asyncio.sleep(4)
    pictures = len(watcher.frames) - before_pictures
    woke = wakeups(CAPTURE_THREAD) - before_wakeups
    assert pictures >= 45, pictures  # 15 a second
    # About once per read timeout (2 s) for its counters, never per picture
    # (a loaded machine adds a switch or two for the GIL at each wake).
    assert woke < pictures / 4, (woke, pictures)
    stats = device.camera.stats
    assert stats.pictures_decoded == 0 and stats.frames_captured == 0
    assert stats.frames_read >= pictures


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", ["basic", "digest"])
async def test_a_camera_that_wants_credentials_gets_them_and_a_wrong_password_shows_nowhere(
    rtsp_available: None, method: str
) -> None:
    with RtspSourceProcess(320, 240, 15, sign_in=(USER, PASSWORD, method)) as rtsp:
        camera, recorder = await opened_camera(rtsp.url_with(USER, PASSWORD))
        track = viewer(camera)
        try:
            async with asyncio.timeout(20):
                while not stamped(await track.recv()):
                    pass
            assert [type(e) for e in recorder.events] == [CameraOpened]
        finally:
            await camera.close()

        camera, recorder = await opened_camera(
            rtsp.url_with(USER, "wrong"), reopen_base=5.0, reopen_cap=5.0
        )
        track = viewer(camera)
        try:
            await eventually(lambda: bool(recorder.of(CameraFailed)), 10, "CameraFailed")
        finally:
            await camera.close()
    (failed,) = recorder.of(CameraFailed)
    assert isinstance(failed, CameraFailed)
    assert "401 (the credentials were refused)" in failed.reason
    assert "wrong" not in failed.reason and USER not in failed.reason


@pytest.mark.timeout(60)
async def test_parameter_sets_sent_only_in_band_are_found_at_the_open(
    rtsp_available: None,
) -> None:
    with RtspSourceProcess(320, 240, 15, inband_parameter_sets=True) as rtsp:
        camera, _ = await opened_camera(rtsp.url)
        track = viewer(camera)
        try:
            async with asyncio.timeout(20):
                while not stamped(await track.recv()):
                    pass
            assert camera.stats.source_codec == "H.264 High 1.3 320x240, passed through"
        finally:
            await camera.close()


@pytest.mark.timeout(60)
async def test_a_camera_with_b_frames_is_decoded_not_passed_through(rtsp_available: None) -> None:
    with RtspSourceProcess(320, 240, 15, bframes=2) as rtsp:
        camera, _ = await opened_camera(rtsp.url)
        track = viewer(camera)
        try:
            async with asyncio.timeout(20):
                frames = [await track.recv() for _ in range(20)]
            assert sum(stamped(f) for f in frames[-10:]) >= 9
            assert camera.passthrough_profile is None
            assert camera.stats.source_codec == (
                "h264 320x240, not passed through: the stream has B-frames"
            )
        finally:
            await camera.close()


@pytest.mark.timeout(60)
async def test_a_camera_that_is_not_h264_is_read_by_ffmpeg(
    rtsp_available: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="intercom_fsm.adapters.camera.readers")
    with RtspSourceProcess(320, 240, 15, codec="mjpeg") as rtsp:
        camera, recorder = await opened_camera(rtsp.url)
        track = viewer(camera)
        started = time.monotonic()
        try:
            async with asyncio.timeout(20):
                while not stamped(await track.recv()):
                    pass
            assert camera.stats.source_codec == "mjpeg 320x240"
            assert [type(e) for e in recorder.events] == [CameraOpened]
        finally:
            await camera.close()
    assert time.monotonic() - started < 15
    assert "is read by FFmpeg: the camera's video is not H.264 (JPEG/90000)" in caplog.text
