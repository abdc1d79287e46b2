"""The camera adapter: ``VIDEO_SOURCE`` captured in its own thread and shared
by every viewer's WebRTC track (protocol.md section 3).

:class:`Camera` is imported on first use: it pulls in OpenCV, PyAV and aiortc
(about half a second), which parsing ``VIDEO_SOURCE`` or reading the settings
does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.adapters.camera.settings import CameraSettings, CameraStats, MediaPath
from intercom_fsm.adapters.camera.sources import (
    CameraIndex,
    DevicePath,
    StreamUrl,
    TestPattern,
    VideoFile,
    VideoSource,
    parse_video_source,
)

if TYPE_CHECKING:
    from intercom_fsm.adapters.camera.camera import Camera

__all__ = [
    "Camera",
    "CameraIndex",
    "CameraSettings",
    "CameraStats",
    "DevicePath",
    "MediaPath",
    "StreamUrl",
    "TestPattern",
    "VideoFile",
    "VideoSource",
    "parse_video_source",
]


def __getattr__(name: str) -> object:
    if name == "Camera":
        from intercom_fsm.adapters.camera.camera import Camera

        return Camera
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
