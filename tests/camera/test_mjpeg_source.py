"""An MJPEG-over-HTTP camera that goes away and comes back: viewers stay
connected, see the offline frame, then live video again."""

from __future__ import annotations

import asyncio
import itertools
import threading

import av
import pytest

from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.hub import ViewerTrack
from intercom_fsm.events import CameraFailed, CameraOpened, CameraRecovered

from .conftest import BRIGHT_LUMA, EventRecorder, MjpegCamera, eventually, luma, next_frame, viewer


async def frames_until(track: ViewerTrack, bright: bool, count: int) -> list[av.VideoFrame]:
    """Receive until ``count`` frames in a row are live (bright) or offline."""
    run: list[av.VideoFrame] = []
    while len(run) < count:
        frame = await next_frame(track)
        run = [*run, frame] if (luma(frame) > BRIGHT_LUMA) == bright else []
    return run


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_stream_lost_and_back(mjpeg_camera: MjpegCamera) -> None:
    recorder = EventRecorder()
    settings = CameraSettings(
        source=mjpeg_camera.url("viewer:pa55w0rd"), fps=10, reopen_base=0.1, reopen_cap=0.4
    )
    camera = Camera(settings, recorder)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(20):
            await frames_until(track, bright=True, count=5)
            assert [type(event) for event in recorder.events] == [CameraOpened]
            opened = recorder.events[0]
            assert isinstance(opened, CameraOpened)
            assert "127.0.0.1" in opened.description
            assert "pa55w0rd" not in opened.description
            assert "t0ps3cret" not in opened.description

            await mjpeg_camera.stop()
            offline = await frames_until(track, bright=False, count=10)
            assert camera.stats.online is False
            steps = [(b.pts or 0) - (a.pts or 0) for a, b in itertools.pairwise(offline)]
            assert all(step > 0 for step in steps)
            # The offline frame keeps coming at about the configured rate.
            assert sum(steps) / len(steps) == pytest.approx(9000, rel=0.25)

            await mjpeg_camera.start()
            await frames_until(track, bright=True, count=5)
            await eventually(lambda: len(recorder.events) == 3, 2, "CameraRecovered delivered")
    finally:
        await camera.close()

    assert [type(event) for event in recorder.events] == [
        CameraOpened,
        CameraFailed,
        CameraRecovered,
    ]
    failed = recorder.events[1]
    assert isinstance(failed, CameraFailed)
    assert "pa55w0rd" not in failed.reason and "t0ps3cret" not in failed.reason
    assert recorder.threads == {threading.get_ident()}  # delivered on the event loop
    stats = camera.stats
    assert stats.failures == 1
    assert stats.reopen_attempts >= 1
    assert stats.source_opens >= 2
    assert stats.offline_frames >= 10
