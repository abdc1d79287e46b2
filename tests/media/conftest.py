"""Fixtures for the media path: a real RTSP camera (GStreamer's RTSP server
re-encoding the time-stamped bench camera to H.264 High, a 2 s GOP), and a
device (camera + peer adapters) that real aiortc viewers connect to.

Without GStreamer's RTSP server the tests that need it skip, and under
``CI=true`` they fail: the Makefile's ``browser`` target installs it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, cast

import av
import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.h264_offer import answer_as_aiortc_knows, declare_profile
from bench.rtsp_source import RtspSourceProcess, rtsp_server_missing
from bench.stamp import Luma
from intercom_fsm import events as ev
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.h264 import NAL_IDR, nal_types
from intercom_fsm.adapters.camera.hub import DirectSend, ViewerTrack
from intercom_fsm.adapters.peer import PeerConnections, PeerSettings
from tests.camera.conftest import EventRecorder
from tests.loopback import LOOPBACK_PEERS, restrict_ice_to_loopback
from tests.requirements import missing

restrict_ice_to_loopback()


def _server_missing(reason: str) -> NoReturn:
    missing("the RTSP tests", reason)


def luma_plane(frame: av.VideoFrame) -> Luma:
    """A yuv420p frame's Y plane: the first ``height`` rows of its planes."""
    planes = frame.to_ndarray()
    # PyAV types to_ndarray() as any dtype some pixel format gives; yuv420p's is uint8.
    assert planes.dtype == np.uint8, planes.dtype
    return cast(Luma, planes[: frame.height])


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    reason = rtsp_server_missing()
    if reason is not None:
        _server_missing(reason)


@pytest.fixture(scope="module")
def rtsp_camera(rtsp_available: None) -> Iterator[RtspSourceProcess]:
    """640x480@15, High profile, an IDR every 2 s, SPS/PPS only in the SDP."""
    with RtspSourceProcess(640, 480, 15) as camera:
        yield camera


class Viewer:
    """An aiortc viewer offering receive-only video with ``codecs`` (MIME
    types, in order) and, for H.264, declaring ``h264_profile``
    (:mod:`bench.h264_offer`). It keeps every decoded frame."""

    def __init__(self, codecs: tuple[str, ...] = ("video/VP8",), h264_profile: str | None = None):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.codecs = codecs
        self.h264_profile = h264_profile
        self.frames: list[av.VideoFrame] = []
        self.answer_sdp = ""
        self._task: asyncio.Task[None] | None = None

    async def offer(self) -> str:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        capabilities = RTCRtpReceiver.getCapabilities("video")
        assert capabilities is not None  # aiortc receives video
        codecs = capabilities.codecs
        transceiver.setCodecPreferences(
            [c for mime in self.codecs for c in codecs if c.mimeType == mime]
            + [c for c in codecs if c.mimeType == "video/rtx"]
        )
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return declare_profile(sdp, self.h264_profile) if self.h264_profile else sdp

    async def accept(self, answer_sdp: str) -> None:
        self.answer_sdp = answer_sdp
        await self.pc.setRemoteDescription(
            RTCSessionDescription(answer_as_aiortc_knows(answer_sdp), "answer")
        )

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.create_task(self._receive(track))

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frames.append(frame)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.pc.close()


def frame_of(payloads: list[bytes], timestamp: int) -> av.Packet[Any]:
    """A frame sent straight to a viewer's sender, as the packet its track
    would have handed aiortc: the payloads joined again by aiortc's own
    depayloader (Annex-B), a keyframe when it holds an IDR."""
    data = b"".join(H264PayloadDescriptor.parse(payload)[1] for payload in payloads)
    packet = av.Packet(data)
    packet.pts = timestamp
    packet.is_keyframe = NAL_IDR in nal_types(data)
    return packet


class Device:
    """The camera and peer adapters as the daemon wires them; every packet a
    viewer's track hands aiortc, or frame the camera sends straight to a
    viewer's sender, is recorded (``sent[peer]``)."""

    def __init__(
        self, settings: CameraSettings, peers: PeerSettings = LOOPBACK_PEERS, **camera_options: Any
    ) -> None:
        self.recorder = EventRecorder()
        self.camera = Camera(settings, self.recorder, **camera_options)
        self.peers = PeerConnections(peers, self.camera, self.recorder)
        self.viewers: list[Viewer] = []
        self.sent: dict[int, list[av.Packet[Any]]] = {}
        self._wrap_tracks()

    def _wrap_tracks(self) -> None:
        make_track = self.camera.track_for_viewer

        def track_for_viewer() -> MediaStreamTrack:
            track = make_track()
            assert isinstance(track, ViewerTrack)
            packets = self.sent.setdefault(len(self.viewers), [])
            receive = track.recv

            async def recording() -> Any:
                item = await receive()
                if isinstance(item, av.Packet):
                    packets.append(item)
                return item

            track.recv = recording  # type: ignore[method-assign]
            offer = track.send_directly

            def send_directly(send: DirectSend) -> asyncio.Future[None] | None:
                def recording_send(payloads: list[bytes], timestamp: int) -> bool:
                    sent = send(payloads, timestamp)
                    if sent:
                        packets.append(frame_of(payloads, timestamp))
                    return sent

                return offer(recording_send)

            track.send_directly = send_directly  # type: ignore[method-assign]
            return track

        self.camera.track_for_viewer = track_for_viewer  # type: ignore[method-assign]

    async def connect(self, viewer: Viewer) -> int:
        self.viewers.append(viewer)
        peer = len(self.viewers)
        await self.peers.create(f"s{peer}", peer, await viewer.offer())
        answer = next(
            e for e in self.recorder.events if isinstance(e, ev.AnswerReady) and e.peer == peer
        )
        await viewer.accept(answer.sdp)
        return peer

    async def close(self) -> None:
        for viewer in self.viewers:
            await viewer.close()
        await self.peers.close_all()
        await self.camera.close()


@pytest_asyncio.fixture
async def make_device() -> AsyncIterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(
        settings: CameraSettings, peers: PeerSettings = LOOPBACK_PEERS, **options: Any
    ) -> Device:
        device = Device(settings, peers, **options)
        made.append(device)
        return device

    yield make
    for device in made:
        await device.close()
