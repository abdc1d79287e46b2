"""The signaling adapter: the device's WebSocket to the backend (protocol.md section 2).

:class:`SignalingClient` opens ``{ws_base_url}/ws/live_stream/{device_code}/``
with the Bearer header and turns everything that happens on it into the
machine's events:

* :class:`SocketOpened` once the handshake succeeded;
* one event per received frame (:func:`parse_frame`), in order;
* at most one terminal event per :meth:`SignalingClient.open`, and exactly one
  when the connection ends on its own: :class:`SocketRejected` for a handshake
  refused with 401/403 or a close with 4401/4403 (the access token was not
  accepted), :class:`SocketClosed` for every other end (no connection, a
  timeout, another status, a close by the server, a dead connection found by
  the heartbeat, a frame over the size limit, a refused insecure URL).

After :meth:`~SignalingClient.close` (or a new ``open``) the old connection
emits nothing more, not even a terminal event: the machine asked for the end
and does not expect to hear of it again.

The device code is part of the URL and the access token part of a header:
neither is ever logged, and every error text that leaves this module is
scrubbed of both. TLS certificates are verified (aiohttp's default). aiohttp
follows redirects on the handshake and drops the Authorization header when one
leads to another origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final
from urllib.parse import quote, urlsplit

import aiohttp
import attrs

from intercom_fsm.adapters.signaling_messages import (
    encode_answer,
    encode_ice,
    parse_frame,
)
from intercom_fsm.events import (
    Event,
    IceCandidate,
    SessionId,
    SocketClosed,
    SocketOpened,
    SocketRejected,
)
from intercom_fsm.redact import REDACTED, one_line, one_line_text, redact
from intercom_fsm.strict_json import is_visible_ascii
from intercom_fsm.transport_policy import insecure_transport_problem

logger = logging.getLogger(__name__)

STREAM_PATH: Final = "/ws/live_stream/{device_code}/"
REJECTED_HANDSHAKE_STATUSES: Final = frozenset({401, 403})
REJECTED_CLOSE_CODES: Final = frozenset({4401, 4403})
ABNORMAL_CLOSURE: Final = 1006
MESSAGE_TOO_BIG: Final = 1009
NORMAL_CLOSURE: Final = 1000

CLOSE_HANDSHAKE_TIMEOUT: Final = 2.0
"""How long our close waits for the server's close frame before dropping the
TCP connection: the machine waits for close() to return."""

MAX_CLOSE_REASON_BYTES: Final = 123
"""RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, two
of which are the close code."""


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


@attrs.frozen
class SignalingSettings:
    ws_base_url: str = attrs.field(converter=_without_trailing_slash)
    heartbeat: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """Seconds of silence before a ping; no pong within half of it ends the
    connection, so a dead one is noticed within about 1.5 heartbeats (aiohttp
    rounds timers of 5 s or more up to the next whole second)."""
    connect_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    """Bounds the TCP/TLS connection and the handshake, and each send."""
    max_message_bytes: int = attrs.field(default=256 * 1024, validator=attrs.validators.gt(0))
    max_sdp_bytes: int = attrs.field(default=64 * 1024, validator=attrs.validators.gt(0))
    allow_insecure_transport: bool = False


@attrs.define(eq=False)
class _Connection:
    """One open() and everything it started."""

    serial: int
    device_code: str = attrs.field(repr=False)
    access_token: str = attrs.field(repr=False)
    live: bool = True
    """False once the connection may no longer emit: it ended, or the owner
    closed or replaced it."""
    task: asyncio.Task[None] | None = None
    socket: aiohttp.ClientWebSocketResponse | None = None
    close_reason: str = "closing"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.device_code, self.access_token)


class SignalingClient:
    """The signaling socket on a shared aiohttp session; events go to ``on_event``
    (a plain callable, called on the event loop's thread)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: SignalingSettings,
        on_event: Callable[[Event], None],
    ) -> None:
        self._session = session
        self._settings = settings
        self._on_event = on_event
        self._current: _Connection | None = None
        self._unfinished: set[_Connection] = set()
        """Every connection whose task has not ended, the current one included."""
        self._serial = 0

    @property
    def settings(self) -> SignalingSettings:
        return self._settings

    def open(self, device_code: str, access_token: str) -> None:
        """Connect in the background; a connection still open is closed first
        and emits nothing more."""
        self._detach("replaced by a new connection")
        older = tuple(self._unfinished)
        self._serial += 1
        connection = _Connection(self._serial, device_code, access_token)
        self._current = connection
        self._unfinished.add(connection)
        connection.task = asyncio.get_running_loop().create_task(
            self._run(connection, older), name=f"signaling-{connection.serial}"
        )
        connection.task.add_done_callback(lambda _task: self._unfinished.discard(connection))

    async def close(self, reason: str) -> None:
        """Close the socket and wait for its task. Idempotent; once called, the
        connection emits no further event."""
        self._detach(reason)
        # Older connections too: one replaced by an open() whose task was
        # cancelled before it started may still hold its socket.
        for connection in tuple(self._unfinished):
            await _finish(connection)

    async def send_answer(self, session: SessionId, sdp: str) -> None:
        await self._send(encode_answer(session, sdp), "answer")

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None:
        await self._send(encode_ice(session, candidate), "ice")

    # --- internals ------------------------------------------------------------------

    def _detach(self, reason: str) -> None:
        """Silence the current connection at once, before any await."""
        connection, self._current = self._current, None
        if connection is not None:
            connection.live = False
            connection.close_reason = reason

    async def _send(self, text: str, kind: str) -> None:
        connection = self._current
        socket = connection.socket if connection else None
        if connection is None or socket is None or socket.closed:
            logger.debug("signaling: not connected, %s message dropped", kind)
            return
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                await socket.send_str(text)
        except (TimeoutError, aiohttp.ClientError, OSError, RuntimeError) as error:
            # The connection is going away; its reader reports the end.
            logger.debug(
                "signaling: %s message dropped: %s", kind, one_line(error, connection.secrets)
            )
            return

    def _emit(self, connection: _Connection, event: Event, *, terminal: bool = False) -> None:
        if not connection.live:
            return
        if terminal:
            connection.live = False
        try:
            self._on_event(event)
        except Exception:
            logger.exception("signaling: the event handler failed on %s", type(event).__name__)

    async def _run(self, connection: _Connection, older: tuple[_Connection, ...]) -> None:
        for replaced in older:
            await _finish(replaced)
        try:
            end = await self._connect_and_read(connection)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the adapter's promise: a failure is an event
            logger.error("signaling: unexpected %s in the socket's task", type(error).__name__)
            end = SocketClosed(reason=f"unexpected {type(error).__name__} in the signaling socket")
        finally:
            await self._close_socket(connection)
        if isinstance(end, SocketClosed):
            end = attrs.evolve(end, reason=redact(end.reason, connection.secrets))
        if connection.live:
            logger.warning("signaling: socket ended: %s", _summary(end))
        self._emit(connection, end, terminal=True)

    async def _connect_and_read(self, connection: _Connection) -> SocketRejected | SocketClosed:
        refusal = self._refusal(connection)
        if refusal is not None:
            return SocketClosed(reason=refusal)
        settings = self._settings
        code = quote(connection.device_code, safe="")
        url = settings.ws_base_url + STREAM_PATH.format(device_code=code)
        logger.info(
            "signaling: connecting to %s",
            settings.ws_base_url + STREAM_PATH.format(device_code=REDACTED),
        )
        try:
            async with asyncio.timeout(settings.connect_timeout):
                connection.socket = await self._session.ws_connect(
                    url,
                    headers={"Authorization": f"Bearer {connection.access_token}"},
                    heartbeat=settings.heartbeat,
                    max_msg_size=settings.max_message_bytes,
                    autoclose=True,
                    autoping=True,
                )
        except aiohttp.WSServerHandshakeError as error:
            # The error's text holds the URL, and so the device code: use the status only.
            if error.status in REJECTED_HANDSHAKE_STATUSES:
                return SocketRejected(error.status)
            if error.status == 101:
                return SocketClosed(reason="the server's WebSocket handshake was invalid")
            return SocketClosed(reason=f"handshake refused with HTTP {error.status}")
        except TimeoutError:
            limit = settings.connect_timeout
            return SocketClosed(reason=f"no WebSocket connection within {limit:g} s")
        except aiohttp.ClientSSLError as error:
            return SocketClosed(reason=f"TLS failure: {one_line(error, connection.secrets)}")
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return SocketClosed(reason=f"cannot connect: {one_line(error, connection.secrets)}")
        logger.info("signaling: socket open")
        self._emit(connection, SocketOpened())
        return await self._read(connection, connection.socket)

    def _refusal(self, connection: _Connection) -> str | None:
        """Why this open() must not even try to connect, or None."""
        base_url = self._settings.ws_base_url
        scheme = urlsplit(base_url).scheme.lower()
        if scheme not in ("ws", "wss"):
            return f"ws_base_url must start with ws:// or wss:// (got {scheme or 'no'} scheme)"
        problem = insecure_transport_problem(base_url, self._settings.allow_insecure_transport)
        if problem is not None:
            return f"not connecting: {problem}"
        if not connection.device_code:
            return "not connecting: no device code"
        if not connection.access_token or not is_visible_ascii(connection.access_token):
            return "not connecting: the access token is empty or not printable ASCII"
        return None

    async def _read(
        self, connection: _Connection, socket: aiohttp.ClientWebSocketResponse
    ) -> SocketRejected | SocketClosed:
        while True:
            message = await socket.receive()
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data: str | bytes = message.data
                event = parse_frame(data, max_sdp_bytes=self._settings.max_sdp_bytes)
                self._emit(connection, event)
                continue
            if message.type is aiohttp.WSMsgType.CLOSE:
                return self._closed_by_server(message.data, message.extra, connection)
            if message.type is aiohttp.WSMsgType.ERROR:
                return self._failed(message.data, connection)
            # CLOSED or CLOSING without a close frame from the server: the
            # TCP connection went away (RFC 6455 7.1.5 calls that 1006).
            return SocketClosed(ABNORMAL_CLOSURE, "connection lost without a close frame")

    def _closed_by_server(
        self, code: int | None, extra: object, connection: _Connection
    ) -> SocketRejected | SocketClosed:
        if code in REJECTED_CLOSE_CODES:
            assert code is not None
            return SocketRejected(code)
        said = one_line_text(extra, connection.secrets) if isinstance(extra, str) else ""
        reason = f"closed by the server with code {code}"
        if said:
            reason += f" ({said})"
        return SocketClosed(code, reason)

    def _failed(self, error: object, connection: _Connection) -> SocketClosed:
        if isinstance(error, aiohttp.ServerTimeoutError):
            return SocketClosed(
                ABNORMAL_CLOSURE,
                f"no pong within {self._settings.heartbeat / 2:g} s of a ping: connection dead",
            )
        if isinstance(error, aiohttp.WebSocketError) and error.code == MESSAGE_TOO_BIG:
            limit = self._settings.max_message_bytes
            return SocketClosed(
                MESSAGE_TOO_BIG, f"a frame larger than the {limit} bytes limit arrived"
            )
        if isinstance(error, aiohttp.WebSocketError):
            described = one_line(error, connection.secrets)
            return SocketClosed(error.code, f"WebSocket protocol error: {described}")
        described = one_line(error, connection.secrets) if isinstance(error, BaseException) else ""
        return SocketClosed(ABNORMAL_CLOSURE, f"connection failed: {described or 'unknown error'}")

    async def _close_socket(self, connection: _Connection) -> None:
        socket = connection.socket
        if socket is None or socket.closed:
            return
        reason = connection.close_reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES]
        reason = reason.decode("utf-8", "ignore").encode("utf-8")
        # The server may have stopped answering: a close frame it never
        # acknowledges must not hold up close() for long.
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
            async with asyncio.timeout(CLOSE_HANDSHAKE_TIMEOUT):
                await socket.close(code=NORMAL_CLOSURE, message=reason)


async def _finish(connection: _Connection) -> None:
    """Cancel the connection's task and wait until it has closed its socket."""
    task = connection.task
    if task is None or task.done():
        return
    task.cancel()
    # asyncio.wait neither raises the task's CancelledError nor cancels the
    # task when the caller is cancelled: a cancelled close() still propagates.
    await asyncio.wait([task])


def _summary(end: SocketRejected | SocketClosed) -> str:
    if isinstance(end, SocketRejected):
        return f"access token refused ({end.status})"
    if end.code is None or str(end.code) in end.reason:
        return end.reason
    return f"{end.reason} (code {end.code})"
