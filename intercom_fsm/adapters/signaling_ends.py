"""How a signaling connection ends, in the machine's words (protocol.md 2).

Pure functions from what aiohttp reported (a refused handshake, a close frame,
an error message) to :class:`SocketRejected` (the access token was not
accepted) or :class:`SocketClosed` (any other end), with a reason an operator
can act on. Server text is redacted of the connection's secrets before it is
cut; a URL (which holds the device code) is never quoted.
"""

from __future__ import annotations

from typing import Final

import aiohttp

from intercom_fsm.events import SocketClosed, SocketRejected
from intercom_fsm.redact import one_line, one_line_text

REJECTED_HANDSHAKE_STATUSES: Final = frozenset({401, 403})
REJECTED_CLOSE_CODES: Final = frozenset({4401, 4403})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
ABNORMAL_CLOSURE: Final = 1006
MESSAGE_TOO_BIG: Final = 1009

SocketEnd = SocketRejected | SocketClosed


class RedirectRefused(Exception):
    """Raised while the handshake is under way, before a redirect is followed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"redirect {status} not followed")
        self.status = status


def refused_redirect(status: int) -> SocketClosed:
    return SocketClosed(
        reason=f"the handshake was answered with a redirect (HTTP {status}), which is not "
        "followed: only the configured WEBSOCKET_API_BASE_URL may become the signaling peer"
    )


def refused_handshake(error: aiohttp.WSServerHandshakeError) -> SocketEnd:
    # The error's text holds the URL, and so the device code: use the status only.
    if error.status in REJECTED_HANDSHAKE_STATUSES:
        return SocketRejected(error.status)
    if error.status in REDIRECT_STATUSES:
        return refused_redirect(error.status)
    if error.status == 101:
        return SocketClosed(reason="the server's WebSocket handshake was invalid")
    return SocketClosed(reason=f"handshake refused with HTTP {error.status}")


def closed_by_server(code: int | None, extra: object, secrets: tuple[str, ...]) -> SocketEnd:
    if code in REJECTED_CLOSE_CODES:
        assert code is not None
        return SocketRejected(code)
    said = one_line_text(extra, secrets) if isinstance(extra, str) else ""
    reason = f"closed by the server with code {code}"
    if said:
        reason += f" ({said})"
    return SocketClosed(code, reason)


def failed(
    error: object, *, heartbeat: float, max_message_bytes: int, secrets: tuple[str, ...]
) -> SocketClosed:
    if isinstance(error, aiohttp.ServerTimeoutError):
        return SocketClosed(
            ABNORMAL_CLOSURE, f"no pong within {heartbeat / 2:g} s of a ping: connection dead"
        )
    if isinstance(error, aiohttp.WebSocketError) and error.code == MESSAGE_TOO_BIG:
        return SocketClosed(
            MESSAGE_TOO_BIG, f"a frame larger than the {max_message_bytes} bytes limit arrived"
        )
    if isinstance(error, aiohttp.WebSocketError):
        return SocketClosed(error.code, f"WebSocket protocol error: {one_line(error, secrets)}")
    described = one_line(error, secrets) if isinstance(error, BaseException) else ""
    return SocketClosed(ABNORMAL_CLOSURE, f"connection failed: {described or 'unknown error'}")


def summary(end: SocketEnd) -> str:
    if isinstance(end, SocketRejected):
        return f"access token refused ({end.status})"
    if end.code is None or str(end.code) in end.reason:
        return end.reason
    return f"{end.reason} (code {end.code})"
