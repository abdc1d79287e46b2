"""What an RTSP control connection carries, sans I/O (RFC 2326).

Out: requests (:func:`request`). In (:class:`IncomingStream`): responses,
interleaved binary frames (``$``, a channel, a 16-bit length, an RTP or RTCP
packet: section 10.12), and the odd request a server sends its client
(``OPTIONS`` or ``GET_PARAMETER`` as a keep-alive of its own). Bytes between
messages that are none of these (a camera's stray line ends, or garbage) are
skipped up to the next message, within a limit.
"""

from __future__ import annotations

import re

import attrs

MAX_HEAD = 16 * 1024
"""A status line and headers longer than this are no camera's."""
MAX_BODY = 64 * 1024
"""An SDP larger than this is no camera's."""
MAX_SKIPPED = 64 * 1024
"""Unrecognised bytes skipped in a row before the connection is given up."""
VERSION = "RTSP/1.0"
USER_AGENT = "intercom-fsm"

_INTERLEAVED = 0x24  # "$"
_REQUEST_LINE = re.compile(rb"[A-Z_]+ \S+ RTSP/1\.\d\r?\n")


class RtspProtocolError(ValueError):
    """The connection carried something that is not RTSP. The message is safe to log."""


@attrs.frozen
class Headers:
    """Header fields in order, looked up without regard to case."""

    fields: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.fields if key.lower() == wanted), None)

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.fields if key.lower() == wanted]


@attrs.frozen
class Response:
    status: int
    reason: str
    headers: Headers
    body: bytes = attrs.field(repr=False)

    @property
    def cseq(self) -> int | None:
        value = self.headers.get("CSeq")
        return int(value) if value is not None and value.strip().isdigit() else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@attrs.frozen
class ServerRequest:
    """A request the server sent its client."""

    method: str
    uri: str
    headers: Headers


@attrs.frozen
class Interleaved:
    """One RTP or RTCP packet sent over the control connection."""

    channel: int
    data: bytes = attrs.field(repr=False)


Incoming = Response | ServerRequest | Interleaved


def request(method: str, uri: str, cseq: int, headers: dict[str, str] | None = None) -> bytes:
    """One request, no body (a client of a camera never sends one)."""
    lines = [f"{method} {uri} {VERSION}", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"a line break in the {name} header")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response(status: int, reason: str, cseq: str | None) -> bytes:
    """An answer to a server's request."""
    lines = [f"{VERSION} {status} {reason}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class IncomingStream:
    """Cuts the bytes a camera sends into :data:`Incoming` messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skipped = 0
        self.skipped_total = 0
        """Unrecognised bytes skipped so far (a camera's quirk, for the debug log)."""

    def feed(self, data: bytes) -> list[Incoming]:
        """The messages ``data`` completes; raises :class:`RtspProtocolError`."""
        buffer = self._buffer
        buffer += data
        found: list[Incoming] = []
        position = 0
        size = len(buffer)
        while position < size:
            if buffer[position] == _INTERLEAVED:
                if size - position < 4:
                    break
                end = position + 4 + (buffer[position + 2] << 8 | buffer[position + 3])
                if end > size:
                    break
                found.append(Interleaved(buffer[position + 1], bytes(buffer[position + 4 : end])))
                position = end
                self._skipped = 0
                continue
            if buffer[position] in b"\r\n":  # line ends between messages
                position += 1
                continue
            if buffer.startswith(b"RTSP/", position) or _REQUEST_LINE.match(buffer, position):
                parsed = self._message(buffer, position)
                if parsed is None:
                    break
                message, position = parsed
                found.append(message)
                self._skipped = 0
                continue
            if buffer.find(b"\n", position) < 0 and buffer.find(b"$", position) < 0:
                if size - position > MAX_HEAD:
                    raise RtspProtocolError("the camera sends something that is not RTSP")
                break  # perhaps a message's first line, cut short: wait for the rest
            position = self._skip(buffer, position)
        del buffer[:position]
        if len(buffer) > MAX_HEAD + MAX_BODY + 4:
            raise RtspProtocolError("a message longer than any camera sends")
        return found

    def _skip(self, buffer: bytearray, position: int) -> int:
        """Past bytes that start no message, to the next candidate."""
        following = len(buffer)
        for marker in (b"$", b"RTSP/"):
            at = buffer.find(marker, position + 1)
            if 0 <= at < following:
                following = at
        skipped = following - position
        self.skipped_total += skipped
        self._skipped += skipped
        if self._skipped > MAX_SKIPPED:
            raise RtspProtocolError("the camera sends something that is not RTSP")
        return following

    def _message(self, buffer: bytearray, start: int) -> tuple[Incoming, int] | None:
        head_end = buffer.find(b"\r\n\r\n", start)
        separator = 4
        if head_end < 0:
            head_end = buffer.find(b"\n\n", start)
            separator = 2
        if head_end < 0:
            if len(buffer) - start > MAX_HEAD:
                raise RtspProtocolError("a status line and headers longer than any camera sends")
            return None
        lines = bytes(buffer[start:head_end]).decode("utf-8", "replace").splitlines()
        headers = _headers(lines[1:])
        length_text = headers.get("Content-Length") or "0"
        if not length_text.strip().isdigit():
            raise RtspProtocolError(f"a Content-Length that is no number: {length_text[:20]!r}")
        length = int(length_text)
        if length > MAX_BODY:
            raise RtspProtocolError(f"a body of {length} bytes, more than any camera sends")
        body_start = head_end + separator
        if len(buffer) - body_start < length:
            return None
        body = bytes(buffer[body_start : body_start + length])
        first = lines[0]
        if first.startswith("RTSP/"):
            parts = first.split(" ", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise RtspProtocolError(f"a status line that is not RTSP: {first[:60]!r}")
            reason = parts[2] if len(parts) > 2 else ""
            return Response(int(parts[1]), reason, headers, body), body_start + length
        method, _, rest = first.partition(" ")
        return ServerRequest(method, rest.rpartition(" ")[0], headers), body_start + length


def _headers(lines: list[str]) -> Headers:
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and fields:  # a folded line continues the last field
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip():
            fields.append((name.strip(), value.strip()))
    return Headers(tuple(fields))
