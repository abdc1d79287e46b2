"""Viewers that negotiate VP8 share one encoder: the camera adapter and the
peer adapter together, against real aiortc viewers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import av
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.stream import Stream

from intercom_fsm import events as ev
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.encoding import (
    QUEUE_LIMIT,
    PacketQueue,
    SharedVp8Encoder,
    default_bitrate,
)
from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.peer import PeerConnections, negotiated_video_codec
from tests.camera.conftest import EventRecorder, eventually
from tests.loopback import LOOPBACK_PEERS, restrict_ice_to_loopback

restrict_ice_to_loopback()

FPS = 15


class Viewer:
    """An aiortc viewer that offers receive-only video and counts what it decodes."""

    def __init__(self, codec: str | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.codec = codec
        self.frames: list[av.VideoFrame] = []
        self.arrivals: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def offer(self) -> str:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if self.codec is not None:
            capabilities = RTCRtpReceiver.getCapabilities("video")
            assert capabilities is not None  # aiortc receives video
            transceiver.setCodecPreferences(
                [c for c in capabilities.codecs if c.mimeType in (self.codec, "video/rtx")]
            )
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.create_task(self._receive(track))

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frames.append(frame)
                self.arrivals.append(time.monotonic())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()


class Device:
    def __init__(self, settings: CameraSettings) -> None:
        self.recorder = EventRecorder()
        self.camera = Camera(settings, self.recorder)
        self.peers = PeerConnections(LOOPBACK_PEERS, self.camera, self.recorder)
        self.viewers: list[Viewer] = []

    async def connect(self, viewer: Viewer) -> None:
        self.viewers.append(viewer)
        peer = len(self.viewers)
        await self.peers.create(f"s{peer}", peer, await viewer.offer())
        answer = next(
            e for e in self.recorder.events if isinstance(e, ev.AnswerReady) and e.peer == peer
        )
        await viewer.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))

    async def close(self) -> None:
        for viewer in self.viewers:
            await viewer.close()
        await self.peers.close_all()
        await self.camera.close()


@pytest_asyncio.fixture
async def device() -> AsyncIterator[Device]:
    made = Device(CameraSettings(width=320, height=240, fps=FPS))
    await made.camera.open()
    yield made
    await made.close()


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_three_vp8_viewers_decode_one_encode_per_picture(device: Device) -> None:
    first, second = Viewer(), Viewer()
    await device.connect(first)
    await device.connect(second)
    await eventually(lambda: len(first.frames) >= 10 and len(second.frames) >= 10, 15, "frames")

    # A viewer joining mid-stream starts at a keyframe made for it.
    keyframes = device.camera.stats.shared_keyframes
    late = Viewer()
    await device.connect(late)
    await eventually(lambda: len(late.frames) >= 10, 15, "the late viewer's frames")
    assert device.camera.stats.shared_keyframes > keyframes

    before = device.camera.stats
    await eventually(
        lambda: device.camera.stats.frames_captured - before.frames_captured >= 2 * FPS,
        15,
        "two seconds' worth of pictures",
    )
    after = device.camera.stats
    captured = after.frames_captured - before.frames_captured
    encoded = after.shared_pictures_encoded - before.shared_pictures_encoded
    delivered = after.frames_delivered - before.frames_delivered
    assert captured >= FPS  # the camera kept going
    # Each picture is encoded once, not once per viewer...
    assert encoded <= captured + 1
    # ...and every viewer got it.
    assert delivered >= 3 * encoded - 3
    for viewer in (first, second, late):
        assert {(f.width, f.height) for f in viewer.frames} == {(320, 240)}
        pts = [f.pts or 0 for f in viewer.frames]
        assert pts == sorted(pts)


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_a_loss_report_brings_a_keyframe(device: Device) -> None:
    viewer = Viewer()
    await device.connect(viewer)
    await eventually(lambda: len(viewer.frames) >= 5, 15, "frames")
    keyframes = device.camera.stats.shared_keyframes
    await asyncio.sleep(0.6)  # past the keyframe rate limit
    # What aiortc's sender runs when the viewer sends a PLI or FIR.
    (sender,) = [t.sender for t in device.peers._peers[1].connection.getTransceivers()]
    sender._send_keyframe()
    await eventually(
        lambda: device.camera.stats.shared_keyframes > keyframes, 5, "a keyframe after the PLI"
    )
    assert device.camera.stats.shared_keyframes > keyframes
    # The viewer goes on decoding after the keyframe.
    decoded = len(viewer.frames)
    await eventually(lambda: len(viewer.frames) >= decoded + 5, 5, "frames after the PLI")
    assert len(viewer.frames) >= decoded + 5


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_h264_and_vp8_viewers_each_share_their_codecs_encoder(device: Device) -> None:
    h264, vp8 = Viewer("video/H264"), Viewer()
    await device.connect(h264)
    await device.connect(vp8)
    await eventually(lambda: len(h264.frames) >= 5 and len(vp8.frames) >= 5, 20, "frames")
    answers = [e for e in device.recorder.events if isinstance(e, ev.AnswerReady)]
    assert [negotiated_video_codec(a.sdp) for a in answers] == ["video/H264", "video/VP8"]
    # Each viewer's pictures come from its codec's shared encoder.
    stats = device.camera.stats
    assert stats.shared_h264_pictures_encoded > 0 and stats.shared_pictures_encoded > 0


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_sharing_off_encodes_per_viewer() -> None:
    device = Device(CameraSettings(width=320, height=240, fps=FPS, shared_encoder=False))
    await device.camera.open()
    try:
        viewer = Viewer()
        await device.connect(viewer)
        await eventually(lambda: len(viewer.frames) >= 5, 15, "frames")
        assert device.camera.stats.shared_pictures_encoded == 0
    finally:
        await device.close()


# --- the queue's rules, with real packets -------------------------------------------------


class KeyframeRequests:
    def __init__(self) -> None:
        self.count = 0

    def request_keyframe(self, urgent: bool = False, layer: object = None) -> None:
        self.count += 1


def packet(keyframe: bool) -> av.Packet[Stream]:
    made = av.Packet(b"\x00" * 10)
    made.is_keyframe = keyframe
    return made


def waiting_for_keyframe(queue: PacketQueue) -> bool:
    """Read afresh through a call: mypy would carry what an assert narrowed
    the attribute to across ``put()``."""
    return queue.waiting_for_keyframe


@pytest.mark.asyncio
async def test_queue_starts_at_a_keyframe_and_restarts_at_one_when_behind() -> None:
    requests = KeyframeRequests()
    queue = PacketQueue(requests)
    queue.put(packet(False))
    assert waiting_for_keyframe(queue)
    queue.put(packet(True))
    for _ in range(QUEUE_LIMIT - 1):
        queue.put(packet(False))
    assert not waiting_for_keyframe(queue)
    # One more while the viewer reads nothing: the queue is stale, so it is
    # dropped and the viewer waits for a keyframe it asked for.
    queue.put(packet(False))
    assert waiting_for_keyframe(queue) and queue.resets == 1 and requests.count == 1
    queue.put(packet(False))
    queue.put(packet(True))
    first = await queue.get()
    assert first is not None and first.is_keyframe
    queue.close()
    assert await queue.get() is None


def test_default_bitrate_follows_size_and_rate_within_bounds() -> None:
    assert default_bitrate(320, 240, 5) == 100_000
    assert default_bitrate(640, 480, 15) == 460_800
    assert default_bitrate(1920, 1080, 30) == 2_500_000


def test_negotiated_codec_is_the_first_of_the_video_section() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 102 97\r\na=rtpmap:97 VP8/90000\r\n"
        "a=rtpmap:102 H264/90000\r\n"
    )
    assert negotiated_video_codec(sdp) == "video/H264"
    assert negotiated_video_codec("v=0\r\nm=audio 9 RTP 0\r\n") is None


@pytest.mark.asyncio
async def test_encoder_stops_when_its_last_viewer_leaves() -> None:
    hub = FrameHub(FPS)
    hub.bind(asyncio.get_running_loop())
    encoder = SharedVp8Encoder(hub, 320, 240, FPS, 200_000)
    queue = encoder.subscribe()
    task = encoder._viewers.task
    assert task is not None and not task.done()
    encoder.unsubscribe(queue)
    await eventually(task.done, 2, "the encoder task ended")
    assert task.done() and not task.cancelled()  # it ended by itself, nobody cancelled it
    assert await queue.get() is None  # the viewer's queue is closed
    await encoder.close()
