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

Sending never waits for the network: messages go into the connection's
bounded outbox (:mod:`.signaling_outbox`) and a writer task sends them; a
backend that stops reading ends the connection as failed instead of holding up
the machine.

The device code is part of the URL and the access token part of a header:
neither is ever logged, and every error text that leaves this module is
scrubbed of both. TLS certificates are verified (aiohttp's default). Redirects
on the handshake are refused, not followed: only the configured base URL, which
the transport policy checked, may become the device's signaling peer (aiohttp
follows them by default, to any origin, even plain ws).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
import attrs

from intercom_fsm.adapters.signaling_ends import (
    ABNORMAL_CLOSURE,
    RedirectRefused,
    SocketEnd,
    closed_by_server,
    failed,
    refused_handshake,
    refused_redirect,
    summary,
)
from intercom_fsm.adapters.signaling_messages import (
    encode_answer,
    encode_ice,
    parse_frame,
)
from intercom_fsm.adapters.signaling_outbox import Outbox
from intercom_fsm.events import (
    Event,
    IceCandidate,
    SessionId,
    SocketClosed,
    SocketOpened,
)
from intercom_fsm.redact import REDACTED, one_line, redact
from intercom_fsm.strict_json import is_visible_ascii
from intercom_fsm.transport_policy import insecure_transport_problem

logger = logging.getLogger(__name__)

STREAM_PATH: Final = "/ws/live_stream/{device_code}/"
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
    """Bounds the TCP/TLS connection and the handshake."""
    send_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """One message taking longer to send means the server stopped reading."""
    max_pending_messages: int = attrs.field(default=64, validator=attrs.validators.gt(0))
    max_pending_bytes: int = attrs.field(default=1024 * 1024, validator=attrs.validators.gt(0))
    """Bounds of what may wait to be sent before the connection counts as failed."""
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
    http: aiohttp.ClientSession | None = None
    socket: aiohttp.ClientWebSocketResponse | None = None
    outbox: Outbox | None = None
    stalled: bool = False
    """The server stopped reading: drop the connection, no close handshake."""
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
        self._send(encode_answer(session, sdp), "answer")

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None:
        self._send(encode_ice(session, candidate), "ice")

    # --- internals ------------------------------------------------------------------

    def _detach(self, reason: str) -> None:
        """Silence the current connection at once, before any await."""
        connection, self._current = self._current, None
        if connection is not None:
            connection.live = False
            connection.close_reason = reason

    def _send(self, text: str, kind: str) -> None:
        connection = self._current
        outbox = connection.outbox if connection else None
        socket = connection.socket if connection else None
        if outbox is None or socket is None or socket.closed:
            logger.debug("signaling: not connected, %s message dropped", kind)
        elif not outbox.put(text):
            # The writer ends the connection and says why.
            logger.debug("signaling: outbox full, %s message dropped", kind)

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
            end = await self._connect_and_serve(connection)
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
            logger.warning("signaling: socket ended: %s", summary(end))
        self._emit(connection, end, terminal=True)

    async def _connect_and_serve(self, connection: _Connection) -> SocketEnd:
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
        connection.http = _handshake_session(self._session)
        try:
            async with asyncio.timeout(settings.connect_timeout):
                connection.socket = await connection.http.ws_connect(
                    url,
                    headers={"Authorization": f"Bearer {connection.access_token}"},
                    heartbeat=settings.heartbeat,
                    max_msg_size=settings.max_message_bytes,
                    autoclose=True,
                    autoping=True,
                )
        except RedirectRefused as refused:
            return refused_redirect(refused.status)
        except aiohttp.WSServerHandshakeError as error:
            return refused_handshake(error)
        except TimeoutError:
            limit = settings.connect_timeout
            return SocketClosed(reason=f"no WebSocket connection within {limit:g} s")
        except aiohttp.ClientSSLError as error:
            return SocketClosed(reason=f"TLS failure: {one_line(error, connection.secrets)}")
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return SocketClosed(reason=f"cannot connect: {one_line(error, connection.secrets)}")
        logger.info("signaling: socket open")
        connection.outbox = Outbox(
            connection.socket,
            max_messages=settings.max_pending_messages,
            max_bytes=settings.max_pending_bytes,
            send_timeout=settings.send_timeout,
            secrets=connection.secrets,
        )
        self._emit(connection, SocketOpened())
        return await self._serve(connection, connection.socket, connection.outbox)

    async def _serve(
        self, connection: _Connection, socket: aiohttp.ClientWebSocketResponse, outbox: Outbox
    ) -> SocketEnd:
        """Read and write until either side ends the connection."""
        name = f"signaling-{connection.serial}"
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(connection, socket), name=f"{name}-read")
        writer = loop.create_task(outbox.drain(), name=f"{name}-write")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.wait({reader, writer})
        if not reader.cancelled():
            return reader.result()
        connection.stalled = True
        return writer.result()

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
        if self._session.closed:
            return "not connecting: the HTTP session is closed"
        return None

    async def _read(
        self, connection: _Connection, socket: aiohttp.ClientWebSocketResponse
    ) -> SocketEnd:
        settings = self._settings
        while True:
            message = await socket.receive()
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data: str | bytes = message.data
                self._emit(connection, parse_frame(data, max_sdp_bytes=settings.max_sdp_bytes))
                continue
            if message.type is aiohttp.WSMsgType.CLOSE:
                return closed_by_server(message.data, message.extra, connection.secrets)
            if message.type is aiohttp.WSMsgType.ERROR:
                return failed(
                    message.data,
                    heartbeat=settings.heartbeat,
                    max_message_bytes=settings.max_message_bytes,
                    secrets=connection.secrets,
                )
            # CLOSED or CLOSING without a close frame from the server: the
            # TCP connection went away (RFC 6455 7.1.5 calls that 1006).
            return SocketClosed(ABNORMAL_CLOSURE, "connection lost without a close frame")

    async def _close_socket(self, connection: _Connection) -> None:
        socket, http = connection.socket, connection.http
        if socket is not None and not socket.closed:
            reason = connection.close_reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES]
            reason = reason.decode("utf-8", "ignore").encode("utf-8")
            # The server may have stopped answering: a close frame it never
            # acknowledges must not hold up close() for long; one that stopped
            # reading gets none (aiohttp drops the connection when its close
            # is cut short).
            limit = 0.0 if connection.stalled else CLOSE_HANDSHAKE_TIMEOUT
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                async with asyncio.timeout(limit):
                    await socket.close(code=NORMAL_CLOSURE, message=reason)
        if http is not None:
            await http.close()  # not the shared connector: only this wrapper


def _handshake_session(shared: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """A session on ``shared``'s connection pool whose requests refuse every
    redirect (``ws_connect`` has no ``allow_redirects``)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(_refuse_redirect)
    return aiohttp.ClientSession(
        connector=shared.connector,
        connector_owner=False,
        timeout=shared.timeout,
        trace_configs=[trace],
    )


async def _refuse_redirect(
    _session: aiohttp.ClientSession, _context: Any, params: aiohttp.TraceRequestRedirectParams
) -> None:
    raise RedirectRefused(params.response.status)


async def _finish(connection: _Connection) -> None:
    """Cancel the connection's task and wait until it has closed its socket."""
    task = connection.task
    if task is None or task.done():
        return
    task.cancel()
    # asyncio.wait neither raises the task's CancelledError nor cancels the
    # task when the caller is cancelled: a cancelled close() still propagates.
    await asyncio.wait([task])
