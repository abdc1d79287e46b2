"""The peer adapter against what a hostile or hasty viewer sends, with real
aiortc viewers on loopback and the real camera: offers closed while they are
being applied, connections that fail to close, and remote ICE candidates that
must not all reach aioice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection

from intercom_fsm import events as ev
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.peer import PeerConnections, PeerSettings
from intercom_fsm.adapters.peer_candidates import CandidatePolicy, RemoteCandidates, filter_offer
from tests.camera.conftest import EventRecorder
from tests.loopback import LOOPBACK_PEERS, restrict_ice_to_loopback
from tests.waiting import eventually

restrict_ice_to_loopback()

pytestmark = pytest.mark.timeout(60)


async def viewer_offer() -> tuple[RTCPeerConnection, str]:
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    return viewer, viewer.localDescription.sdp


@attrs.define
class Device:
    camera: Camera
    peers: PeerConnections
    recorder: EventRecorder


@pytest_asyncio.fixture
async def device() -> AsyncIterator[Device]:
    recorder = EventRecorder()
    camera = Camera(CameraSettings(source="testsrc", fps=10), recorder)
    await camera.open()
    peers = PeerConnections(LOOPBACK_PEERS, camera, recorder)
    try:
        yield Device(camera, peers, recorder)
    finally:
        await peers.close_all()
        await camera.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("turns", [1, 2, 3, 4, 5, 6])
async def test_an_offer_closed_while_it_is_applied_leaves_no_track(
    device: Device, turns: int
) -> None:
    # A hangup (or a new offer) right behind the offer: ClosePeer runs while
    # create() is still inside aiortc, after the given number of loop turns.
    # The camera was opened with nobody watching (it starts before the first
    # viewer): let a viewer come and go first, so that it is idle, and so
    # must be again whether or not this offer got as far as a track.
    device.camera.track_for_viewer().stop()
    await eventually(lambda: not device.camera.stats.capturing, 5, "the capture idle at first")
    viewer, offer = await viewer_offer()
    creating = asyncio.create_task(device.peers.create("hasty", 1, offer))
    for _ in range(turns):
        await asyncio.sleep(0)
    await device.peers.close(1)
    await creating
    assert device.camera.stats.viewers == 0
    await eventually(lambda: not device.camera.stats.capturing, 5, "the capture goes idle")
    assert not [e for e in device.recorder.events if isinstance(e, ev.AnswerReady)]
    await viewer.close()


@pytest.mark.asyncio
async def test_a_connection_that_fails_to_close_does_not_stop_the_others(
    device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    viewers = []
    for peer in (1, 2):
        viewer, offer = await viewer_offer()
        viewers.append(viewer)
        await device.peers.create(f"viewer-{peer}", peer, offer)
    await eventually(
        lambda: len([e for e in device.recorder.events if isinstance(e, ev.AnswerReady)]) == 2,
        10,
        "two answers",
    )
    failing = device.peers._peers[1].connection
    second = device.peers._peers[2].connection

    async def close_raises() -> None:
        raise AttributeError("'NoneType' object has no attribute 'stop'")

    failing.close = close_raises  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="intercom_fsm.adapters.peer"):
        await device.peers.close_all()
    assert len(device.peers) == 0
    assert second.connectionState == "closed"
    assert device.camera.stats.viewers == 0
    assert any("did not close cleanly" in r.getMessage() for r in caplog.records)
    for viewer in viewers:
        await viewer.close()


def candidate(host: str, port: int = 9) -> ev.IceCandidate:
    return ev.IceCandidate(f"candidate:1 1 udp 2122260223 {host} {port} typ host", "0", 0)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "224.0.0.251",
        "ff02::fb",
        "0.0.0.0",
        "::",
        "255.255.255.255",
        "evil.example",
    ],
)
def test_addresses_that_cannot_be_a_viewer_are_refused(host: str) -> None:
    candidates = RemoteCandidates(CandidatePolicy())
    assert candidates.refusal(host) is not None
    assert candidates.taken == 0


def test_a_viewer_gives_at_most_fifty_candidates_and_four_mdns_names() -> None:
    candidates = RemoteCandidates(CandidatePolicy())
    refused = [candidates.refusal(f"{index}.example.local") for index in range(6)]
    assert [r is None for r in refused] == [True] * 4 + [False] * 2
    taken = [candidates.refusal(f"198.51.100.{index}") for index in range(60)]
    assert sum(r is None for r in taken) == 46
    assert "beyond the 50 candidates" in str(taken[-1])


def test_the_offers_candidate_lines_pass_the_same_policy() -> None:
    lines = [f"a=candidate:{i} 1 udp 1 198.51.100.{i} 9 typ host\r\n" for i in range(60)]
    lines.insert(0, "a=candidate:x 1 udp 1 127.0.0.1 9 typ host\r\n")
    offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" + "".join(lines)
    sdp, dropped = filter_offer(offer, RemoteCandidates(CandidatePolicy()))
    assert sdp.count("a=candidate:") == 50
    assert "127.0.0.1" not in sdp
    assert len(dropped) == 11


@pytest.mark.asyncio
async def test_trickled_candidates_are_filtered_and_their_warnings_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = EventRecorder()
    camera = Camera(CameraSettings(source="testsrc", fps=10), recorder)
    await camera.open()
    peers = PeerConnections(PeerSettings(), camera, recorder)  # as on a device
    viewer, offer = await viewer_offer()
    try:
        await peers.create("v", 1, offer)
        await eventually(
            lambda: any(isinstance(e, ev.AnswerReady) for e in recorder.events), 10, "answer"
        )
        entry = peers._peers[1]
        with caplog.at_level(logging.WARNING, logger="intercom_fsm.adapters.peer"):
            for index in range(200):
                await peers.add_candidate("v", 1, candidate("127.0.0.1", 1000 + index))
            for index in range(60):
                await peers.add_candidate("v", 1, candidate(f"198.51.100.{index}"))
        assert entry.candidates.taken == 50
        warnings = [r for r in caplog.records if "ICE candidate" in r.getMessage()]
        assert len(warnings) <= 2, [r.getMessage() for r in warnings]
    finally:
        await peers.close_all()
        await camera.close()
        await viewer.close()
