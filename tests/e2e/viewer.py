"""A viewer made with aiortc, watching a device through the sandbox's viewer
socket as the monitor page does: it offers recvonly video, trickles nothing
(aiortc puts its candidates in the offer), applies the device's answer and
candidates, and counts the decoded frames."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.peers import ScriptedViewer


class MediaViewer:
    def __init__(self, info: SandboxInfo, device_code: str) -> None:
        self.info = info
        self.device_code = device_code
        self.frame_times: list[float] = []
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
        pc.addTransceiver("video", direction="recvonly")
        pc.on("track", lambda track: self._tasks.append(asyncio.create_task(self._count(track))))
        await pc.setLocalDescription(await pc.createOffer())
        assert self._socket is not None
        await self._socket.send_str(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))

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
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
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
                self.frame_times.append(time.monotonic())
                self.sizes.add((frame.width, frame.height))
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
