"""A passed-through camera's frames sent directly through the device's own
TURN allocation: with ``ICE_TRANSPORT_POLICY=relay`` the device has no other
candidate, so every packet it sends goes out through aioice's TURN transport
(channel data to coturn over UDP, or framed on the TCP connection to it), and
coturn relays it to the viewer. While that way out is backed up no frame is
sent, and the viewer goes on at the camera's next IDR.

The camera is GStreamer's RTSP server, the relay Debian's coturn on 127.0.0.1
(``tests/netlab/turn.py``: long-term credentials, loopback peers allowed), the
viewer aiortc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCRtpSender

from bench.rtsp_source import RtspSourceProcess
from intercom_fsm.adapters import rtp_direct
from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.hub import ViewerTrack
from intercom_fsm.adapters.camera.passthrough import H264Passthrough
from intercom_fsm.adapters.peer import IceServer, PeerSettings
from tests.camera.conftest import eventually
from tests.netlab.turn import TurnServer

from .conftest import Device, Viewer
from .test_rtp_direct import direct_loop, h264_viewer
from .test_rtp_sender import media_sent_as_aiortc_sends_it, video_sender

FRAMES = 20


def relayed_peers(turn: TurnServer, transport: str) -> PeerSettings:
    server = IceServer((turn.url(transport),), username=turn.username, credential=turn.password)
    return PeerSettings(ice_servers=(server,), allow_loopback_candidates=True, relay_only=True)


async def frames_wait_while_the_way_out_is_backed_up(
    device: Device, viewer: Viewer, peer: int, sender: RTCRtpSender
) -> None:
    """With any byte waiting counted as backed up, no frame is sent; once the
    way out clears, the viewer is sent the camera's next IDR and what follows."""
    track = sender.track
    assert isinstance(track, ViewerTrack)
    passthrough = track._encoder
    assert isinstance(passthrough, H264Passthrough)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rtp_direct, "BACKLOG_LIMIT", -1)
        sent_before = len(device.sent[peer])
        await eventually(lambda: passthrough.frames_not_sent >= 1, 5, "a frame held back")
        await asyncio.sleep(0.5)
        assert len(device.sent[peer]) == sent_before
    assert device.camera.stats.passthrough_frames_not_sent == passthrough.frames_not_sent
    decoded = len(viewer.frames)
    await eventually(lambda: len(device.sent[peer]) > sent_before, 5, "frames again")
    assert device.sent[peer][sent_before].is_keyframe
    await eventually(lambda: len(viewer.frames) >= decoded + FRAMES, 10, "pictures again")


def nominated_local_candidate(sender: RTCRtpSender) -> Any:
    """The device's candidate of the pair its ICE connection nominated."""
    connection = sender.transport.transport._connection
    return connection._nominated[1].local_candidate


@pytest.mark.e2e
@pytest.mark.asyncio
@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relaying_device_sends_the_cameras_frames_directly_through_its_allocation(
    rtsp_camera: RtspSourceProcess,
    make_device: Callable[..., Device],
    tmp_path: Path,
    transport: str,
) -> None:
    with TurnServer("127.0.0.1", tmp_path / "turn") as turn:
        settings = CameraSettings(source=rtsp_camera.url, width=320, height=240, fps=15)
        device = make_device(settings, relayed_peers(turn, transport))
        await device.camera.open()
        viewer, peer, arrivals = await h264_viewer(device)
        await eventually(lambda: len(viewer.frames) >= FRAMES, 40, "the relayed viewer's pictures")

        # The device offered nothing but its relayed address, and uses it.
        candidates = [line for line in viewer.answer_sdp.splitlines() if "a=candidate:" in line]
        assert candidates and all(" typ relay" in line for line in candidates), candidates
        sender = video_sender(device, peer)
        local = nominated_local_candidate(sender)
        assert local.type == "relay"
        loop = direct_loop(sender)
        media = media_sent_as_aiortc_sends_it(viewer, sender, loop.packets_sent, arrivals)
        assert len({p.timestamp for p in media}) >= FRAMES
        if transport == "tcp":
            assert "tcp or tls connected" in turn.log_text()
        await frames_wait_while_the_way_out_is_backed_up(device, viewer, peer, sender)
        # Closed while coturn runs: the allocation is deleted, not waited for.
        await device.close()
