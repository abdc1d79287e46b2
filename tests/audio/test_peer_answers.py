"""The peer adapter answering offers' audio (protocol.md section 3.2), each
row of the table against a real aiortc viewer, with the audio adapter on the
real sound server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm import events as ev
from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.door import Audio
from intercom_fsm.adapters.audio.sdp import split
from intercom_fsm.adapters.peer import PeerConnections
from intercom_fsm.adapters.peer_audio import PeerAudio
from intercom_fsm.adapters.rtp_sender import lean_loop_of
from tests.audio.conftest import EventRecorder, eventually
from tests.audio.peers import Heard, SamplesTrack
from tests.audio.signals import band_level_dbfs, dominant_hz, tone
from tests.audio.sound_server import SPEAKER_PCM, SoundServer
from tests.loopback import LOOPBACK_PEERS, restrict_ice_to_loopback

restrict_ice_to_loopback()
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(60)]

DOOR_HZ = 700.0


class PatternSource:
    def track_for_viewer(self) -> MediaStreamTrack:
        return VideoStreamTrack()


class Viewer:
    """A real aiortc viewer: which sections it offers, what it receives."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: dict[str, list[MediaStreamTrack]] = {"audio": [], "video": []}
        self.pc.on("track", lambda track: self.tracks[track.kind].append(track))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def connected(self) -> None:
        await eventually(lambda: self.pc.connectionState == "connected", 15, "viewer connected")


def directions(sdp: str) -> list[tuple[str, str]]:
    return [(section.kind, section.direction) for section in split(sdp)[1]]


@pytest_asyncio.fixture
async def door(sound: SoundServer) -> AsyncIterator[Audio]:
    audio = Audio(
        AudioSettings(source=f"tone:{DOOR_HZ:g}", sink=SPEAKER_PCM, echo="off"), EventRecorder()
    )
    await audio.open_microphone()
    await audio.open_speaker()
    yield audio
    await audio.close()


async def answered(audio: Audio | None, viewer: Viewer) -> tuple[str, EventRecorder]:
    events = EventRecorder()
    peers = PeerConnections(LOOPBACK_PEERS, PatternSource(), events, PeerAudio(audio))
    offer = await viewer.offer()
    await peers.create("viewer", 1, offer)
    await eventually(
        lambda: bool(events.of(ev.AnswerReady) or events.of(ev.PeerFailed)), 10, "an answer"
    )
    failed = events.of(ev.PeerFailed)
    if failed:
        await peers.close_all()
        raise AssertionError(failed)
    answer = events.of(ev.AnswerReady)[0]
    assert isinstance(answer, ev.AnswerReady)
    await viewer.accept(answer.sdp)
    viewer.peers = peers  # type: ignore[attr-defined]
    return answer.sdp, events


async def close(viewer: Viewer) -> None:
    await viewer.pc.close()
    await viewer.peers.close_all()  # type: ignore[attr-defined]


async def test_no_audio_in_the_offer_gets_video_only(door: Audio) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("video", direction="recvonly")
    sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [("video", "sendonly")]
        await viewer.connected()
    finally:
        await close(viewer)


async def test_recvonly_audio_is_answered_sendonly_with_the_door_microphone(door: Audio) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("video", direction="recvonly")
    viewer.pc.addTransceiver("audio", direction="recvonly")
    sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [("video", "sendonly"), ("audio", "sendonly")]
        assert "opus/48000/2" in sdp.lower() and "pcmu" not in sdp.lower()
        await viewer.connected()
        heard = Heard(viewer.tracks["audio"][0])
        samples = await heard.wait_for(1.5, 15)
        await heard.stop()
        assert abs(dominant_hz(samples[-48_000:]) - DOOR_HZ) < 5
        assert door.stats.talking_viewers == 0
        # The shared Opus packets go out through the lean RTP loop: 1.5 s heard
        # is 75 packets of 20 ms sent at least.
        connection = viewer.peers._peers[1].connection  # type: ignore[attr-defined]
        sender = next(s for s in connection.getSenders() if s.kind == "audio")
        lean = lean_loop_of(sender)
        assert lean is not None and lean.packets_sent >= 75
    finally:
        await close(viewer)
    await eventually(lambda: door.stats.listening_viewers == 0, 5, "the listener released")


async def test_sendrecv_audio_listens_and_talks(door: Audio, sound: SoundServer) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("video", direction="recvonly")
    viewer.pc.addTrack(SamplesTrack(tone(1200, 2, dbfs=-20)))
    sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [("video", "sendonly"), ("audio", "sendrecv")]
        await viewer.connected()
        heard = Heard(viewer.tracks["audio"][0])
        samples = await heard.wait_for(1.5, 15)
        await heard.stop()
        assert abs(dominant_hz(samples[-48_000:]) - DOOR_HZ) < 5
        await eventually(lambda: door.stats.talking_viewers == 1, 10, "the viewer talking")
        with sound.recording() as recording:
            played = await asyncio.to_thread(recording.wait_for, 1.5, 15)
        assert band_level_dbfs(played[-48_000:], 1200, width=50) > -26
    finally:
        await close(viewer)


async def test_an_offer_whose_only_audio_codec_we_cannot_use(
    door: Audio, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("video", direction="recvonly")
    audio = viewer.pc.addTransceiver("audio", direction="recvonly")
    audio.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
    )
    with caplog.at_level(logging.INFO):
        sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [("video", "sendonly"), ("audio", "inactive")]
        assert "no codec the device can use (offered: pcmu/8000" in caplog.text
        await viewer.connected()
        assert door.stats.listening_viewers == 0
    finally:
        await close(viewer)


async def test_a_device_without_audio_answers_the_audio_inactive() -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("video", direction="recvonly")
    viewer.pc.addTransceiver("audio", direction="sendrecv")
    sdp, _events = await answered(None, viewer)
    try:
        assert directions(sdp) == [("video", "sendonly"), ("audio", "inactive")]
        await viewer.connected()
    finally:
        await close(viewer)


async def test_two_audio_sections_answer_the_first_only(door: Audio) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("audio", direction="recvonly")
    viewer.pc.addTransceiver("video", direction="recvonly")
    viewer.pc.addTransceiver("audio", direction="recvonly")
    sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [
            ("audio", "sendonly"),
            ("video", "sendonly"),
            ("audio", "inactive"),
        ]
        await viewer.connected()
        heard = Heard(viewer.tracks["audio"][0])
        samples = await heard.wait_for(1.0, 15)
        await heard.stop()
        assert abs(dominant_hz(samples[-24_000:]) - DOOR_HZ) < 5
        assert door.stats.listening_viewers == 1
    finally:
        await close(viewer)


async def test_an_audio_only_offer_is_answered_with_audio_alone(door: Audio) -> None:
    viewer = Viewer()
    viewer.pc.addTransceiver("audio", direction="recvonly")
    sdp, _events = await answered(door, viewer)
    try:
        assert directions(sdp) == [("audio", "sendonly")]
        await viewer.connected()
        heard = Heard(viewer.tracks["audio"][0])
        samples = await heard.wait_for(1.0, 15)
        await heard.stop()
        assert abs(dominant_hz(samples[-24_000:]) - DOOR_HZ) < 5
    finally:
        await close(viewer)


async def test_an_audio_only_offer_without_audio_is_refused_and_nothing_else_touched(
    door: Audio,
) -> None:
    events = EventRecorder()
    peers = PeerConnections(LOOPBACK_PEERS, PatternSource(), events, PeerAudio(None))
    healthy = Viewer()
    healthy.pc.addTransceiver("video", direction="recvonly")
    _sdp, _ = await answered(None, healthy)
    audio_only = Viewer()
    audio_only.pc.addTransceiver("audio", direction="recvonly")
    try:
        await healthy.connected()
        await peers.create("audio-only", 2, await audio_only.offer())
        await eventually(lambda: bool(events.of(ev.PeerFailed)), 10, "refused")
        failed = events.of(ev.PeerFailed)[0]
        assert isinstance(failed, ev.PeerFailed)
        assert "the offer has no video section" in failed.reason
        assert "the device has no audio" in failed.reason
        assert not events.of(ev.AnswerReady)
        await asyncio.sleep(0.5)
        assert healthy.pc.connectionState == "connected"
    finally:
        await audio_only.pc.close()
        await peers.close_all()
        await close(healthy)
