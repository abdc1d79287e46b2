"""aiortc peers for the media tests: a device that answers with a synthetic camera, and a viewer.

Tests only: aioice leaves loopback out of its host candidates, so
:func:`loopback_only` makes it offer 127.0.0.1 alone, and every peer
connection gets ``iceServers=[]`` so that no public STUN server is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import time
from typing import Any

import aiohttp
import aioice.ice
import av
import numpy as np
import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.sdp import candidate_from_sdp

logger = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 320, 240, 15
NO_STUN = RTCConfiguration(iceServers=[])


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class MovingBars(VideoStreamTrack):
    """A synthetic camera: a bar sweeping across a dark frame."""

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        self._count += 1
        # Paced in real time, as a camera would be.
        await asyncio.sleep(max(0.0, self._start + self._count / FPS - time.monotonic()))
        image = np.full((HEIGHT, WIDTH, 3), 32, dtype=np.uint8)
        column = (self._count * 8) % WIDTH
        image[:, column : column + 24] = (240, 200, 40)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self._count
        frame.time_base = fractions.Fraction(1, FPS)
        return frame


def parse_candidate(data: dict[str, Any] | None) -> RTCIceCandidate | None:
    if not data or not data.get("candidate"):
        return None
    candidate = candidate_from_sdp(data["candidate"].removeprefix("candidate:"))
    candidate.sdpMid = data.get("sdpMid")
    candidate.sdpMLineIndex = data.get("sdpMLineIndex")
    return candidate


class AnsweringDevice:
    """The device's signaling loop, as protocol.md says: one peer connection per session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.peers: dict[str | None, RTCPeerConnection] = {}
        self.answered = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            session = data.get("session")
            if data["type"] == "offer":
                await self._answer(session, data["sdp"])
            elif data["type"] == "ice" and session in self.peers:
                await self.peers[session].addIceCandidate(parse_candidate(data["candidate"]))
            elif data["type"] == "hangup" and session in self.peers:
                await self.peers.pop(session).close()

    async def _answer(self, session: str | None, sdp: str) -> None:
        if session in self.peers:
            await self.peers.pop(session).close()
        peer = RTCPeerConnection(NO_STUN)
        self.peers[session] = peer
        await peer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        peer.addTrack(MovingBars())
        await peer.setLocalDescription(await peer.createAnswer())
        answer = {"type": "answer", "sdp": peer.localDescription.sdp, "session": session}
        await self.socket.send_str(json.dumps(answer))
        self.answered += 1

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for peer in self.peers.values():
            await peer.close()
        await self.socket.close()
