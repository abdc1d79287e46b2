"""A viewer that reads the capture time stamped into every frame it decodes.

It watches a device through the sandbox's viewer socket, as the monitor page
does: it signs in, offers receive-only video, applies the device's answer and
candidates, and offers again whenever the device comes back online (the
sandbox announces presence), so a recovery is measured the way a person's
monitor experiences it. For every decoded frame it keeps when it arrived, which
peer connection brought it, and the stamp it carried (or that the stamp could
not be read).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from bench.h264_offer import answer_as_aiortc_knows, declare_profile
from bench.stamp import latency_ms, read_stamp
from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.peers import ScriptedViewer


@dataclass(frozen=True)
class ReceivedFrame:
    arrived: float
    """``time.monotonic()`` when the decoded frame came out of the receiver."""
    offer: int
    """Which of this viewer's offers (0, 1, ...) the frame came through."""
    sequence: int | None
    latency_ms: int | None
    """Capture (stamp) to decoded, wall clock; None when the stamp was unreadable."""


@dataclass
class Offer:
    sent: float
    first_frame: float | None = None


@dataclass
class StampViewer:
    info: SandboxInfo
    device_code: str
    offer_when_online: bool = True
    keep_live_call: bool = False
    """When the device comes back online, keep a call that is still connected
    instead of offering again (calls outlive the device's signaling socket,
    protocol.md 3.3; the monitor page does the same)."""
    configuration: RTCConfiguration = field(default_factory=lambda: RTCConfiguration(iceServers=[]))
    """ICE servers (none by default: never a public STUN server) and policy."""
    h264_profile: str | None = None
    """Declare this H.264 profile in the offer (:mod:`bench.h264_offer`), as a
    browser whose decoder takes it would."""
    frames: list[ReceivedFrame] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    online_changes: list[tuple[float, bool]] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None
    _socket: aiohttp.ClientWebSocketResponse | None = None
    _pc: RTCPeerConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> StampViewer:
        self._http = await ScriptedViewer.sign_in(self.info)
        self._socket = await self._http.ws_connect(
            f"{self.info.ws_base_url}/ws/view/{self.device_code}/"
        )
        self._tasks.append(asyncio.create_task(self._read_signaling()))
        return self

    async def offer(self) -> None:
        """Offer (again): a new peer connection replaces the old one."""
        if self._pc is not None:
            await self._pc.close()
        pc = RTCPeerConnection(self.configuration)
        self._pc = pc
        index = len(self.offers)
        pc.addTransceiver("video", direction="recvonly")
        pc.on(
            "track",
            lambda track: self._tasks.append(asyncio.create_task(self._receive(track, index))),
        )
        await pc.setLocalDescription(await pc.createOffer())
        assert self._socket is not None
        self.offers.append(Offer(sent=time.monotonic()))
        sdp = pc.localDescription.sdp
        if self.h264_profile is not None:
            sdp = declare_profile(sdp, self.h264_profile)
        await self._socket.send_str(json.dumps({"type": "offer", "sdp": sdp}))

    async def wait_for_frame(self, after: float, within: float) -> float | None:
        """When the first frame that arrived after ``after`` did; None when none
        came ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            arrived = next((f.arrived for f in self.frames if f.arrived > after), None)
            if arrived is not None:
                return arrived
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), remaining)

    def first_frame_of_offer(self, offer: int, after: float = 0.0) -> float | None:
        return next(
            (f.arrived for f in self.frames if f.offer == offer and f.arrived > after), None
        )

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        """The current offer's connection."""
        return self._pc

    def between(self, start: float, end: float) -> list[ReceivedFrame]:
        return [f for f in self.frames if start <= f.arrived < end]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pc is not None:
            await self._pc.close()
        if self._socket is not None:
            await self._socket.close()
        if self._http is not None:
            await self._http.close()

    async def _read_signaling(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data: dict[str, Any] = json.loads(message.data)
            kind = data.get("type")
            if kind in ("welcome", "presence"):
                online = bool(data.get("online"))
                self.online_changes.append((time.monotonic(), online))
                live = self._pc is not None and self._pc.connectionState == "connected"
                if online and self.offer_when_online and not (self.keep_live_call and live):
                    await self.offer()
                continue
            pc = self._pc
            if pc is None:
                continue
            if kind == "answer":
                sdp = data["sdp"]
                if self.h264_profile is not None:
                    sdp = answer_as_aiortc_knows(sdp)
                with contextlib.suppress(Exception):
                    await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            elif kind == "ice" and isinstance(data.get("candidate"), dict):
                await _add_candidate(pc, data["candidate"])

    async def _receive(self, track: MediaStreamTrack, offer: int) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                arrived = time.monotonic()
                now_ms = time.time_ns() // 1_000_000
                assert isinstance(frame, av.VideoFrame)
                stamp = read_stamp(luma_plane(frame))
                self.frames.append(
                    ReceivedFrame(
                        arrived,
                        offer,
                        None if stamp is None else stamp.sequence,
                        None if stamp is None else latency_ms(stamp.wall_ms, now_ms),
                    )
                )
                record = self.offers[offer]
                if record.first_frame is None:
                    record.first_frame = arrived
                self._news.set()


def luma_plane(frame: av.VideoFrame) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The Y plane of a decoded frame, without conversion (rows padded to the
    plane's line size are cut back to the picture's width)."""
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    luma: np.ndarray[Any, np.dtype[np.uint8]] = rows[:, : plane.width]
    return luma


async def _add_candidate(pc: RTCPeerConnection, candidate: dict[str, Any]) -> None:
    text = candidate.get("candidate", "")
    if not text or pc.remoteDescription is None:
        return
    parsed = candidate_from_sdp(text.removeprefix("candidate:"))
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    with contextlib.suppress(Exception):
        await pc.addIceCandidate(parsed)
