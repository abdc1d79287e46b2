"""An RTSP camera on 127.0.0.1 that answers as a test scripts it, and keeps
every request it got: for what GStreamer's server cannot be made to do
(redirects, stale nonces, requests of its own, junk, silence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import attrs

from intercom_fsm.adapters.camera.rtsp.messages import (
    Headers,
    IncomingStream,
    Response,
    ServerRequest,
)

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=scripted\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;"
    "sprop-parameter-sets=Z2QAHqzZQKA9sBEAAAMAAQAAAwAeDxYtlg==,aOvjyyLA\r\n"
    "a=control:track1\r\n"
)


@attrs.frozen
class Asked:
    method: str
    url: str
    headers: Headers


Answer = Callable[[Asked], str | None]
"""The status line and headers (no CSeq, no final blank line) for a request,
optionally a body after a blank line; None: no answer at all."""


def ok(asked: Asked) -> str | None:
    """A camera that takes everything over TCP."""
    if asked.method == "OPTIONS":
        return "RTSP/1.0 200 OK\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"
    if asked.method == "DESCRIBE":
        return (
            "RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\n"
            f"Content-Base: {asked.url}/\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
        )
    if asked.method == "SETUP":
        return (
            "RTSP/1.0 200 OK\r\nSession: 12345678;timeout=60\r\n"
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"
        )
    return "RTSP/1.0 200 OK\r\nSession: 12345678"


class ScriptedCamera:
    def __init__(self, answer: Answer = ok) -> None:
        self.answer = answer
        self.asked: list[Asked] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.answers: list[Response] = []
        """What the client answered to this camera's own requests."""
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{port}/live"

    def methods(self) -> list[str]:
        return [asked.method for asked in self.asked]

    def send(self, data: bytes) -> None:
        for writer in self.writers:
            writer.write(data)

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        incoming = IncomingStream()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                self._parse(incoming, data, writer)
        writer.close()

    def _parse(self, incoming: IncomingStream, data: bytes, writer: asyncio.StreamWriter) -> None:
        for message in incoming.feed(data):
            if isinstance(message, Response):  # the client answering one of ours
                self.answers.append(message)
                continue
            if not isinstance(message, ServerRequest):
                continue
            asked = Asked(message.method, message.uri, message.headers)
            self.asked.append(asked)
            reply = self.answer(asked)
            if reply is None:
                continue
            head, _, body = reply.partition("\r\n\r\n")
            status, _, rest = head.partition("\r\n")
            cseq = message.headers.get("CSeq") or "0"
            lines = [status, f"CSeq: {cseq}"] + ([rest] if rest else [])
            out = "\r\n".join(lines) + "\r\n\r\n" + body
            writer.write(out.encode("latin-1"))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self.writers:
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


@contextlib.asynccontextmanager
async def scripted(answer: Answer = ok) -> AsyncIterator[ScriptedCamera]:
    camera = ScriptedCamera(answer)
    await camera.start()
    try:
        yield camera
    finally:
        await camera.stop()
