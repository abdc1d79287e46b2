"""The naive client: a device client written the way most aiortc camera examples are.

It is the benchmark's baseline, deliberately naive, not a product. It speaks
the same wire protocol as the daemon (/work/shared/protocol.md) and streams,
but it reproduces the common patterns of the examples found on the web:

- ``CameraTrack(VideoStreamTrack)`` calls the blocking ``cv2.VideoCapture.read()``
  inside ``recv()``, on the event loop, paced by ``next_timestamp()`` (aiortc's
  30 fps ``VIDEO_PTIME``, whatever the source's rate);
- one ``cv2.VideoCapture`` per viewer, opened on the event loop in ``__init__``;
- ``bgr24`` numpy frames handed to aiortc, which converts them for the encoder;
- a fixed 5 s sleep before every reconnect (no backoff, no jitter), tokens in
  memory only, no refresh: a refused socket (401/403, 4401/4403) starts a new
  device flow;
- the codec forced with ``setCodecPreferences`` (the aiortc webcam example's
  ``force_codec``).

    python -m bench.naive_client --http-base URL --ws-base URL --client-id ID \
        [--client-secret S] --source URL_OR_INDEX [--codec vp8]

It prints JSON lines on stdout: ``{"event": "signed_in", "device_code": ...}``
once it has tokens, ``{"event": "connected"}`` each time the socket opens, and
a few others (``user_code``, ``answered``, ``peer_state``, ``disconnected``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import signal
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.sdp import candidate_from_sdp

RETRY_SECONDS = 5.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class CameraTrack(VideoStreamTrack):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
        self.last: Any = np.zeros((240, 320, 3), dtype=np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        ok, frame = self.cap.read()
        if ok:
            self.last = frame
        video_frame = av.VideoFrame.from_ndarray(self.last, format="bgr24")
        video_frame.pts = pts
        video_frame.time_base = time_base
        return video_frame

    def stop(self) -> None:
        super().stop()
        self.cap.release()


class NaiveClient:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pcs: dict[str | None, RTCPeerConnection] = {}

    async def sign_in(self, http: aiohttp.ClientSession) -> tuple[str, str]:
        """The device flow (RFC 8628); returns the device code and the access token."""
        client = {"client_id": self.args.client_id}
        if self.args.client_secret:
            client["client_secret"] = self.args.client_secret
        form = {**client, "device_type": "camera", "device_os": platform.platform()}
        async with http.post(f"{self.args.http_base}/oauth/device-authorization/", data=form) as r:
            r.raise_for_status()
            start = await r.json()
        emit("user_code", user_code=start["user_code"], uri=start["verification_uri"])
        interval = float(start.get("interval", 5))
        poll = {**client, "grant_type": DEVICE_GRANT, "device_code": start["device_code"]}
        while True:
            await asyncio.sleep(interval)
            async with http.post(f"{self.args.http_base}/oauth/token/", data=poll) as r:
                body = await r.json(content_type=None)
            if r.status == 200:
                return start["device_code"], body["access_token"]
            if body.get("error") == "slow_down":
                interval += 5
            elif body.get("error") != "authorization_pending":
                raise RuntimeError(f"device flow failed: {r.status} {body.get('error')}")

    async def run(self) -> None:
        token: str | None = None
        device_code = ""
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    if token is None:
                        device_code, token = await self.sign_in(http)
                        emit("signed_in", device_code=device_code)
                    url = f"{self.args.ws_base}/ws/live_stream/{device_code}/"
                    headers = {"Authorization": f"Bearer {token}"}
                    async with http.ws_connect(url, headers=headers) as ws:
                        emit("connected")
                        async for msg in ws:
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                await self.handle(ws, msg.data)
                    if ws.close_code in (4401, 4403):
                        token = None
                    emit("disconnected", code=ws.close_code)
                except aiohttp.WSServerHandshakeError as error:
                    if error.status in (401, 403):
                        token = None
                    emit("disconnected", status=error.status)
                except Exception as error:
                    emit("error", error=type(error).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def handle(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        try:
            message = json.loads(text)
            session = message.get("session")
            if message["type"] == "offer":
                await self.answer(ws, message["sdp"], session)
            elif message["type"] == "ice" and session in self.pcs:
                candidate = message.get("candidate") or {}
                if candidate.get("candidate"):
                    ice = candidate_from_sdp(candidate["candidate"].removeprefix("candidate:"))
                    ice.sdpMid = candidate.get("sdpMid")
                    ice.sdpMLineIndex = candidate.get("sdpMLineIndex")
                    await self.pcs[session].addIceCandidate(ice)
            elif message["type"] == "hangup" and session in self.pcs:
                await self.close_pc(self.pcs.pop(session))
        except Exception as error:
            emit("bad_message", error=f"{type(error).__name__}: {error}")

    async def answer(
        self, ws: aiohttp.ClientWebSocketResponse, sdp: str, session: str | None
    ) -> None:
        if session in self.pcs:
            await self.close_pc(self.pcs.pop(session))
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[session] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            emit("peer_state", session=session, state=pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                if self.pcs.get(session) is pc:
                    del self.pcs[session]
                await self.close_pc(pc)

        sender = pc.addTrack(CameraTrack(self.args.source))
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver = next(t for t in pc.getTransceivers() if t.sender == sender)
        mime = f"video/{self.args.codec}".lower()
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == mime])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        reply: dict[str, Any] = {"type": "answer", "sdp": pc.localDescription.sdp}
        if session is not None:
            reply["session"] = session
        await ws.send_str(json.dumps(reply))
        emit("answered", session=session)

    async def close_pc(self, pc: RTCPeerConnection) -> None:
        for sender in pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
        await pc.close()

    async def close(self) -> None:
        pcs, self.pcs = list(self.pcs.values()), {}
        await asyncio.gather(*(self.close_pc(pc) for pc in pcs), return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    client = NaiveClient(args)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await client.run()
    except asyncio.CancelledError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), timeout=1.5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-base", required=True)
    parser.add_argument("--ws-base", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--source", required=True, help="camera index, path or URL")
    parser.add_argument("--codec", default="vp8", choices=["vp8", "h264"])
    parser.add_argument("--loopback-ice", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.http_base, args.ws_base = args.http_base.rstrip("/"), args.ws_base.rstrip("/")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.loopback_ice:
        from tests.loopback import restrict_ice_to_loopback

        restrict_ice_to_loopback()
    asyncio.run(main(arguments))
