"""An RTSP camera as ``VIDEO_SOURCE``: over TCP or UDP as configured, and a
camera that hangs is noticed within the read timeout and read again once it
answers; read on the event loop (``native``) and by FFmpeg alike. Against
GStreamer's RTSP server."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.rtsp_source import RtspSourceProcess
from bench.stamp import read_stamp
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.events import CameraFailed, CameraOpened, CameraRecovered
from tests.camera.conftest import EventRecorder, eventually, viewer

from .conftest import luma_plane

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def stamped(frame: object) -> bool:
    """A live picture of the bench camera (the offline picture has no stamp)."""
    import av

    assert isinstance(frame, av.VideoFrame)
    return read_stamp(luma_plane(frame)) is not None


READERS = pytest.mark.parametrize("reader", ["native", "ffmpeg"])


@pytest.mark.timeout(60)
@READERS
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_the_camera_is_read_over_the_transport_asked_for(
    rtsp_camera: RtspSourceProcess, transport: str, reader: str
) -> None:
    recorder = EventRecorder()
    setups = len(rtsp_camera.transports())
    camera = Camera(
        CameraSettings(
            source=rtsp_camera.url,
            width=640,
            height=480,
            fps=15,
            rtsp_transport=transport,
            rtsp_reader=reader,
        ),
        recorder,
    )
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(20):
            frames = [await track.recv() for _ in range(10)]
        assert all(stamped(frame) for frame in frames[-5:])
        (setup,) = rtsp_camera.transports()[setups:]
        assert ("RTP/AVP/TCP" in setup) == (transport == "tcp"), setup
        assert [type(e) for e in recorder.events] == [CameraOpened]
        opened = recorder.events[0]
        assert isinstance(opened, CameraOpened) and "H.264 High" in opened.description
        assert camera.stats.source_codec == "H.264 High 3.0 640x480, passed through"
    finally:
        await camera.close()


@pytest.mark.timeout(60)
@READERS
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_a_hung_camera_fails_within_its_timeout_and_comes_back(
    rtsp_available: None, transport: str, reader: str
) -> None:
    with RtspSourceProcess(320, 240, 15) as rtsp:
        recorder = EventRecorder()
        settings = CameraSettings(
            source=rtsp.url,
            fps=15,
            rtsp_transport=transport,
            rtsp_reader=reader,
            network_timeout=1.5,
            reopen_base=0.5,
            reopen_cap=1.0,
        )
        camera = Camera(settings, recorder)
        await camera.open()
        track = viewer(camera)
        try:
            async with asyncio.timeout(40):
                while not stamped(await track.recv()):
                    pass
                rtsp.pause()
                paused = time.monotonic()
                last_live = paused
                while stamped(await track.recv()):
                    last_live = time.monotonic()
                # The offline picture within the read timeout (plus slack), not 30 s.
                assert time.monotonic() - paused < 1.5 + 1.5
                await eventually(lambda: bool(recorder.of(CameraFailed)), 2, "CameraFailed")
                assert last_live - paused < 0.5
                rtsp.resume()
                while not stamped(await track.recv()):
                    pass
                assert [type(e) for e in recorder.events] == [
                    CameraOpened,
                    CameraFailed,
                    CameraRecovered,
                ]
        finally:
            await camera.close()
