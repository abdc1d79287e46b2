"""The peer adapter against a real aiortc viewer, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm import events as ev
from intercom_fsm.adapters.peer import PeerConnections, local_candidates
from tests.loopback import LOOPBACK_PEERS, restrict_ice_to_loopback

restrict_ice_to_loopback()


class PatternSource:
    def __init__(self) -> None:
        self.tracks: list[MediaStreamTrack] = []

    def track_for_viewer(self) -> MediaStreamTrack:
        track = VideoStreamTrack()
        self.tracks.append(track)
        return track


class Recorder:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.changed = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, kind: type) -> ev.Event:
        async with asyncio.timeout(10):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                self.changed.clear()
                await self.changed.wait()


async def viewer_offer(video: bool = True) -> RTCPeerConnection:
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if video:
        viewer.addTransceiver("video", direction="recvonly")
    else:
        viewer.addTransceiver("audio", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    return viewer


@pytest_asyncio.fixture
async def peers() -> AsyncIterator[tuple[PeerConnections, Recorder, PatternSource]]:
    recorder, source = Recorder(), PatternSource()
    connections = PeerConnections(LOOPBACK_PEERS, source, recorder)
    yield connections, recorder, source
    await connections.close_all()


@pytest.mark.asyncio
async def test_answers_an_offer_and_streams_frames(
    peers: tuple[PeerConnections, Recorder, PatternSource],
) -> None:
    connections, recorder, source = peers
    viewer = await viewer_offer()
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    viewer.on("track", received.set_result)
    await connections.create("v1", 7, viewer.localDescription.sdp)
    answer = await recorder.wait_for(ev.AnswerReady)
    assert isinstance(answer, ev.AnswerReady)
    assert answer.peer == 7 and answer.session == "v1"
    assert "VP8" in answer.sdp.split("m=video")[1].split("\n")[0] or "VP8" in answer.sdp
    candidates = [e for e in recorder.events if isinstance(e, ev.LocalIceCandidate)]
    assert candidates[-1].candidate is None
    assert any(c.candidate and "127.0.0.1" in c.candidate.candidate for c in candidates)
    await viewer.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
    await recorder.wait_for(ev.PeerConnected)
    track = await asyncio.wait_for(received, 10)
    frame = await asyncio.wait_for(track.recv(), 10)
    assert isinstance(frame, av.VideoFrame) and frame.width > 0
    await viewer.close()
    await connections.close(7)
    assert len(connections) == 0
    assert source.tracks[0].readyState == "ended"


@pytest.mark.asyncio
async def test_offer_without_video_fails_the_peer_clearly(
    peers: tuple[PeerConnections, Recorder, PatternSource],
) -> None:
    connections, recorder, _source = peers
    viewer = await viewer_offer(video=False)
    await connections.create("v2", 1, viewer.localDescription.sdp)
    failed = await recorder.wait_for(ev.PeerFailed)
    assert isinstance(failed, ev.PeerFailed)
    assert "no video" in failed.reason
    await viewer.close()


@pytest.mark.asyncio
async def test_unparsable_sdp_fails_the_peer_without_raising(
    peers: tuple[PeerConnections, Recorder, PatternSource],
) -> None:
    connections, recorder, _source = peers
    await connections.create("v3", 2, "v=0\r\nthis is not sdp\r\n")
    failed = await recorder.wait_for(ev.PeerFailed)
    assert isinstance(failed, ev.PeerFailed)
    assert "offer could not be applied" in failed.reason


@pytest.mark.asyncio
async def test_remote_candidates_and_their_end_are_applied_or_refused_quietly(
    peers: tuple[PeerConnections, Recorder, PatternSource],
) -> None:
    connections, recorder, _source = peers
    viewer = await viewer_offer()
    await connections.create("v4", 3, viewer.localDescription.sdp)
    await recorder.wait_for(ev.AnswerReady)
    for candidate in local_candidates(viewer.localDescription.sdp):
        await connections.add_candidate("v4", 3, candidate)
    await connections.add_candidate("v4", 3, ev.IceCandidate("candidate:garbage"))
    await connections.add_candidate("v4", 3, None)
    await connections.add_candidate("v4", 99, None)  # unknown peer: nothing happens
    assert not any(isinstance(e, ev.PeerFailed) for e in recorder.events)
    await viewer.close()


def test_local_candidates_carry_their_media_section() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP 0\r\na=mid:a0\r\na=candidate:1 1 udp 5 127.0.0.1 1 typ host\r\n"
        "m=video 9 UDP 96\r\na=mid:v1\r\na=candidate:2 1 udp 5 127.0.0.1 2 typ host\r\n"
    )
    found = local_candidates(sdp)
    assert [(c.sdp_mid, c.sdp_mline_index) for c in found] == [("a0", 0), ("v1", 1)]
    assert found[1].candidate.startswith("candidate:2 ")
