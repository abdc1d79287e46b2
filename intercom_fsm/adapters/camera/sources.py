"""What ``VIDEO_SOURCE`` names, parsed into a typed source.

Accepted forms, tried in this order:

* ``testsrc``: the built-in moving test pattern, for machines with no camera;
* digits (``0``): a camera index;
* ``http://``, ``https://``, ``rtsp://`` or ``rtsps://`` URLs: a network stream,
  treated as live (never paced, never looped);
* a path under ``/dev/``: a capture device, which may be unplugged right now
  (the camera adapter keeps trying to open it);
* any other path: a video file, which must exist; it is looped.

Every source has a ``description`` fit for logs and events: URLs lose their
user name, password and query string, which is where IP cameras carry
credentials.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import attrs

TEST_PATTERN_NAME = "testsrc"
STREAM_SCHEMES = ("http", "https", "rtsp", "rtsps")
_ACCEPTED = (
    f"a camera index such as 0, a device path such as /dev/video0, an existing video file, "
    f"an {'/'.join(STREAM_SCHEMES)} URL, or {TEST_PATTERN_NAME}"
)


@attrs.frozen
class TestPattern:
    __test__ = False  # not a pytest test class, despite the name

    @property
    def description(self) -> str:
        return f"test pattern ({TEST_PATTERN_NAME})"


@attrs.frozen
class CameraIndex:
    index: int

    @property
    def description(self) -> str:
        return f"camera {self.index}"


@attrs.frozen
class DevicePath:
    path: str

    @property
    def description(self) -> str:
        return f"device {self.path}"


@attrs.frozen
class VideoFile:
    path: str

    @property
    def description(self) -> str:
        return f"file {self.path}"


@attrs.frozen
class StreamUrl:
    url: str = attrs.field(repr=False)

    @property
    def description(self) -> str:
        return redacted_url(urlsplit(self.url))


VideoSource = TestPattern | CameraIndex | DevicePath | VideoFile | StreamUrl


def redacted_url(parts: SplitResult) -> str:
    """The URL without user name, password, query or fragment."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    query = "?[redacted]" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def parse_video_source(text: str) -> VideoSource:
    """Parse ``VIDEO_SOURCE``; a ``ValueError`` names what is wrong."""
    value = text.strip()
    if not value:
        raise ValueError(f"is empty; expected {_ACCEPTED}")
    if value.lower() == TEST_PATTERN_NAME:
        return TestPattern()
    if value.isascii() and value.isdigit():
        return CameraIndex(int(value))
    if value.startswith("-") and value[1:].isdigit():
        raise ValueError(f"camera index {value} is negative; camera indexes start at 0")
    if "://" in value:
        return _parse_url(value)
    if value.startswith("/dev/"):
        return DevicePath(value)
    return _parse_file(value)


def _parse_url(value: str) -> StreamUrl:
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    shown = redacted_url(parts)
    if scheme not in STREAM_SCHEMES:
        raise ValueError(
            f"URL scheme {parts.scheme!r} is not supported; use one of {', '.join(STREAM_SCHEMES)}"
        )
    if not parts.hostname:
        raise ValueError(f"URL {shown} has no host")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"URL {shown} has an invalid port") from None
    return StreamUrl(value)


def _parse_file(value: str) -> VideoFile:
    path = Path(os.path.expanduser(value))
    if path.is_dir():
        raise ValueError(f"{value} is a directory, not a video file")
    if not path.is_file():
        raise ValueError(f"{value} is no existing file; expected {_ACCEPTED}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{value} is not readable")
    return VideoFile(str(path))
