"""An ``rtsp://`` URL taken apart: where to connect, what requests name (the
URL without its credentials), the credentials, and how the log names it."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from intercom_fsm.adapters.camera.rtsp.auth import Credentials
from intercom_fsm.adapters.camera.rtsp.describe import NotReadHere
from intercom_fsm.adapters.camera.sources import redacted_url

DEFAULT_PORT = 554


@attrs.frozen
class CameraUrl:
    url: str = attrs.field(repr=False)
    """What requests name: the URL without its credentials."""
    host: str
    port: int
    credentials: Credentials | None
    description: str

    @classmethod
    def parse(cls, text: str) -> CameraUrl:
        parts = urlsplit(text)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise NotReadHere("not an rtsp:// URL")
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        credentials = None
        if parts.username is not None:
            credentials = Credentials(unquote(parts.username), unquote(parts.password or ""))
        plain = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return cls(plain, host, parts.port or DEFAULT_PORT, credentials, redacted_url(parts))
