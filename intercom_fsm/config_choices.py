"""The values of the settings that take one of a few words: each an enum
whose values are the words ``config.py``'s rows accept (``Choice``)."""

from __future__ import annotations

import enum


class VideoCodec(enum.Enum):
    AUTO = "auto"
    VP8 = "vp8"
    H264 = "h264"


class RtspTransport(enum.Enum):
    TCP = "tcp"
    UDP = "udp"


class RtspReader(enum.Enum):
    NATIVE = "native"
    FFMPEG = "ffmpeg"


class H264Encoder(enum.Enum):
    AUTO = "auto"
    SOFTWARE = "software"


class AudioEcho(enum.Enum):
    CANCEL = "cancel"
    HALF_DUPLEX = "half-duplex"
    OFF = "off"


class NoiseSuppression(enum.Enum):
    OFF = "off"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    VERY_HIGH = "very-high"


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


class IceTransportPolicy(enum.Enum):
    ALL = "all"
    RELAY = "relay"
