"""The camera's tracks through real aiortc peer connections on this host."""

from __future__ import annotations

import asyncio

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm.adapters.camera import Camera, CameraSettings

from .conftest import EventRecorder, eventually


async def video_frame(track: MediaStreamTrack) -> av.VideoFrame:
    frame = await track.recv()
    assert isinstance(frame, av.VideoFrame)
    return frame


async def connect(camera: Camera) -> tuple[RTCPeerConnection, RTCPeerConnection, MediaStreamTrack]:
    """A device-side peer sending a camera track, and a viewer receiving it."""
    device = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    viewer.on("track", received.set_result)
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    await device.setRemoteDescription(viewer.localDescription)
    device.addTrack(camera.track_for_viewer())
    await device.setLocalDescription(await device.createAnswer())
    await viewer.setRemoteDescription(device.localDescription)
    return device, viewer, await received


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_two_viewers_receive_video_from_one_capture() -> None:
    camera = Camera(CameraSettings(fps=10), EventRecorder())
    await camera.open()
    peers: list[RTCPeerConnection] = []
    try:
        async with asyncio.timeout(20):
            links = [await connect(camera), await connect(camera)]
            for device, viewer, _ in links:
                peers += [device, viewer]
            for _, _, remote in links:
                frames = [await video_frame(remote) for _ in range(5)]
                assert {(frame.width, frame.height) for frame in frames} == {(320, 240)}
                pts = [frame.pts or 0 for frame in frames]
                assert pts == sorted(pts)
            assert camera.stats.source_opens == 1
            assert camera.stats.viewers == 2

            # Closing a peer connection stops its track; the last one idles the capture.
            for device, viewer, _ in links:
                await device.close()
                await viewer.close()
            await eventually(lambda: camera.stats.viewers == 0, 3, "tracks stopped")
            await eventually(lambda: not camera.stats.capturing, 3, "capture idle")
    finally:
        for peer in peers:
            await peer.close()
        await camera.close()
