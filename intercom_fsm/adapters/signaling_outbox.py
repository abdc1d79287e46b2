"""What the device sends on its signaling socket, sent by a task of its own.

The machine asks for an answer or an ICE candidate and moves on: a send must
not hold it up. A backend that stops reading fills the TCP buffers, and then
every write waits; so :class:`Outbox` takes each message at once into a
bounded queue, and :meth:`Outbox.drain`, the connection's writer task, sends
them in order. Either bound ends the connection as failed, with a reason:
more than ``max_messages`` or ``max_bytes`` waiting, or one send taking longer
than ``send_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import logging

import aiohttp

from intercom_fsm.events import SocketClosed
from intercom_fsm.redact import one_line

logger = logging.getLogger(__name__)

ABNORMAL_CLOSURE = 1006


class Outbox:
    def __init__(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        *,
        max_messages: int,
        max_bytes: int,
        send_timeout: float,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._socket = socket
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._send_timeout = send_timeout
        self._secrets = secrets
        self._waiting: collections.deque[str] = collections.deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self._overflow: str | None = None

    def put(self, text: str) -> bool:
        """Queue ``text``; False (and the writer ends the connection) when the
        queue is full."""
        if self._overflow is not None:
            return False
        size = len(text.encode("utf-8"))
        if len(self._waiting) >= self._max_messages or self._bytes + size > self._max_bytes:
            self._overflow = (
                f"{len(self._waiting)} messages ({self._bytes} bytes) wait to be sent: "
                "the server stopped reading"
            )
            self._wakeup.set()
            return False
        self._waiting.append(text)
        self._bytes += size
        self._wakeup.set()
        return True

    async def drain(self) -> SocketClosed:
        """Send until a bound is broken; returns the connection's end then.
        Cancelled when the connection ends otherwise."""
        while True:
            while not self._waiting and self._overflow is None:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._overflow is not None:
                return SocketClosed(ABNORMAL_CLOSURE, self._overflow)
            text = self._waiting.popleft()
            self._bytes -= len(text.encode("utf-8"))
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self._socket.send_str(text)
            except TimeoutError:
                limit = self._send_timeout
                return SocketClosed(
                    ABNORMAL_CLOSURE,
                    f"a send took more than {limit:g} s: the server stopped reading",
                )
            except (aiohttp.ClientError, OSError, RuntimeError) as error:
                # The connection is going away; its reader reports the end.
                logger.debug("signaling: message dropped: %s", one_line(error, self._secrets))
