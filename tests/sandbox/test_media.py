"""Media through the sandbox's relay: an aiortc viewer watches an aiortc device."""

from __future__ import annotations

import asyncio
import json

import av
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.media import HEIGHT, NO_STUN, WIDTH, AnsweringDevice, loopback_only
from tests.sandbox.peers import ScriptedDevice, ScriptedViewer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_a_viewer_receives_video_from_the_device_through_the_relay(
    device: ScriptedDevice,
    control: SandboxControl,
    info: SandboxInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loopback_only(monkeypatch)
    grant = await device.authorize(control)
    answering = AnsweringDevice(await device.connect(grant.device_code, grant.access_token))
    viewer = await ScriptedViewer.watch(info, grant.device_code)
    peer = RTCPeerConnection(NO_STUN)
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    peer.on("track", tracks.put_nowait)
    try:
        peer.addTransceiver("video", direction="recvonly")
        await peer.setLocalDescription(await peer.createOffer())
        # aiortc puts every candidate in the SDP; the end marker is still sent, as a browser would.
        await viewer.send({"type": "offer", "sdp": peer.localDescription.sdp})
        await viewer.send({"type": "ice", "candidate": None})
        answer = await viewer.receive(within=10)
        assert (answer["type"], answer["session"]) == ("answer", viewer.session)
        await peer.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

        track = await asyncio.wait_for(tracks.get(), 10)
        sizes = set()
        for _ in range(5):
            frame = await asyncio.wait_for(track.recv(), 10)
            assert isinstance(frame, av.VideoFrame)
            sizes.add((frame.width, frame.height))
        assert sizes == {(WIDTH, HEIGHT)}
    finally:
        await peer.close()
        await viewer.close()
    hangup = [
        frame.json()
        for frame in control.messages(grant.device_code)
        if frame.text and json.loads(frame.text)["type"] == "hangup"
    ]
    assert hangup == [{"type": "hangup", "session": viewer.session}]
    await answering.close()
