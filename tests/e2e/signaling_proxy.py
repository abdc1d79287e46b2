"""A TCP proxy between the daemon and the sandbox's signaling socket that can
slip raw WebSocket frames into what the server sends: frames no real server
library would produce (invalid UTF-8 in a text frame, a frame past the size
limit), at a frame boundary of the real stream.

Loopback only; started and stopped by the test that uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final frame as a server sends it (RFC 6455 section 5.2)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class SignalingProxy:
    """``127.0.0.1:port`` forwards to ``upstream``; ``inject(frame)`` sends a
    raw frame to every device connection between two of the server's frames."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: list[tuple[asyncio.StreamWriter, asyncio.Lock]] = []

    def __enter__(self) -> SignalingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def inject(self, frame: bytes) -> int:
        """Returns how many device connections got the frame."""
        future = asyncio.run_coroutine_threadsafe(self._inject(frame), self._loop)
        return future.result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer, _lock in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _inject(self, frame: bytes) -> int:
        sent = 0
        for writer, lock in list(self._writers):
            async with lock:
                if not writer.is_closing():
                    writer.write(frame)
                    await writer.drain()
                    sent += 1
        return sent

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port
        )
        lock = asyncio.Lock()
        entry = (client_writer, lock)
        tasks = [
            asyncio.create_task(_pipe(client_reader, upstream_writer)),
            asyncio.create_task(
                self._frames_to_client(upstream_reader, client_writer, lock, entry)
            ),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(ValueError):
                self._writers.remove(entry)
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _frames_to_client(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        lock: asyncio.Lock,
        entry: tuple[asyncio.StreamWriter, asyncio.Lock],
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        await writer.drain()
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            await _pipe(reader, writer)
            return
        self._writers.append(entry)
        while True:
            first = await reader.readexactly(2)
            length = first[1] & 0x7F
            extra = b""
            if length == 126:
                extra = await reader.readexactly(2)
                length = struct.unpack("!H", extra)[0]
            elif length == 127:
                extra = await reader.readexactly(8)
                length = struct.unpack("!Q", extra)[0]
            mask = await reader.readexactly(4) if first[1] & 0x80 else b""
            payload = await reader.readexactly(length)
            async with lock:
                writer.write(first + extra + mask + payload)
                await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
