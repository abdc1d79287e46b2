"""A viewer made with aiortc, watching a device through the sandbox's viewer
socket as the monitor page does: it offers recvonly video, trickles nothing
(aiortc puts its candidates in the offer), applies the device's answer and
candidates, and counts the decoded frames (and reads their stamps, when
the camera is the bench's). It offers aiortc's codecs, or ``codecs`` (MIME
types, in order); ``h264_profile`` declares the H.264 profile its decoder
takes (:mod:`bench.h264_offer`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from bench.h264_offer import answer_as_aiortc_knows, declare_profile
from bench.stamp import read_stamp
from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.peers import ScriptedViewer


class MediaViewer:
    def __init__(
        self,
        info: SandboxInfo,
        device_code: str,
        codecs: tuple[str, ...] = (),
        h264_profile: str | None = None,
    ) -> None:
        self.info = info
        self.device_code = device_code
        self.codecs = codecs
        self.h264_profile = h264_profile
        self.frame_times: list[float] = []
        self.stamps: list[int | None] = []
        """Each decoded frame's stamp sequence (None where it has none)."""
        self.sizes: set[tuple[int, int]] = set()
        self.messages: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._pc: RTCPeerConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._frame_arrived = asyncio.Event()

    async def start(self) -> MediaViewer:
        self._http = await ScriptedViewer.sign_in(self.info)
        self._socket = await self._http.ws_connect(
            f"{self.info.ws_base_url}/ws/view/{self.device_code}/"
        )
        self._tasks.append(asyncio.create_task(self._read()))
        await self.offer()
        return self

    async def offer(self) -> None:
        """Offer (again): a new peer connection replaces the old one."""
        if self._pc is not None:
            await self._pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        transceiver = pc.addTransceiver("video", direction="recvonly")
        if self.codecs:
            video = RTCRtpReceiver.getCapabilities("video")
            assert video is not None  # None only for a kind other than audio and video
            capabilities = video.codecs
            transceiver.setCodecPreferences(
                [c for mime in self.codecs for c in capabilities if c.mimeType == mime]
                + [c for c in capabilities if c.mimeType == "video/rtx"]
            )
        pc.on("track", lambda track: self._tasks.append(asyncio.create_task(self._count(track))))
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        if self.h264_profile:
            sdp = declare_profile(sdp, self.h264_profile)
        assert self._socket is not None
        await self._socket.send_str(json.dumps({"type": "offer", "sdp": sdp}))

    async def _read(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            self.messages.append(data)
            pc = self._pc
            if pc is None:
                continue
            if data.get("type") == "answer":
                answer = answer_as_aiortc_knows(data["sdp"]) if self.h264_profile else data["sdp"]
                await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            elif data.get("type") == "ice" and data.get("candidate"):
                candidate = data["candidate"]
                text = candidate.get("candidate", "")
                if text and pc.remoteDescription is not None:
                    parsed = candidate_from_sdp(text.removeprefix("candidate:"))
                    parsed.sdpMid = candidate.get("sdpMid")
                    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
                    with contextlib.suppress(Exception):
                        await pc.addIceCandidate(parsed)

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)  # it offered video only
                self.frame_times.append(time.monotonic())
                self.sizes.add((frame.width, frame.height))
                planes = frame.to_ndarray()  # yuv420p: the luma's rows come first
                # av types the array by every format it may return; yuv420p is
                # 8-bit, and view() lets mypy see that (it copies nothing).
                assert planes.dtype == np.uint8, planes.dtype
                stamp = read_stamp(planes[: frame.height].view(np.uint8))
                self.stamps.append(stamp.sequence if stamp is not None else None)
                self._frame_arrived.set()

    async def wait_for_frames(self, count: int) -> None:
        start = len(self.frame_times)
        async with asyncio.timeout(20):
            while len(self.frame_times) < start + count:
                self._frame_arrived.clear()
                await self._frame_arrived.wait()

    def frames_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.frame_times if start <= t < end)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest wait for a frame between ``start`` and ``end``."""
        times = [start, *(t for t in self.frame_times if start <= t < end), end]
        return max(later - earlier for earlier, later in itertools.pairwise(times))

    @property
    def answer_sdp(self) -> str | None:
        """The device's latest answer, as it sent it."""
        answers = [m for m in self.messages if m.get("type") == "answer"]
        return str(answers[-1]["sdp"]) if answers else None

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "none"

    async def leave_signaling(self) -> None:
        """Close the viewer socket only (the sandbox tells the device
        ``hangup``); the peer connection stays to watch what the device does."""
        if self._socket is not None:
            await self._socket.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._pc is not None:
            await self._pc.close()
        if self._socket is not None:
            await self._socket.close()
        if self._http is not None:
            await self._http.close()
