"""The audio adapter: the door's microphone to every viewer and the viewers'
voices to its speaker, echo cancelled (protocol.md section 3.2).

:class:`Audio` is imported on first use: it pulls in aiortc, PyAV and the
WebRTC audio processing module, which parsing ``AUDIO_SOURCE`` /
``AUDIO_SINK`` / ``AUDIO_ECHO`` or reading the settings does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.adapters.audio.settings import (
    AlsaDevice,
    AudioSettings,
    AudioSink,
    AudioSource,
    AudioStats,
    EchoMode,
    NoDevice,
    ToneSource,
    parse_audio_sink,
    parse_audio_source,
    parse_echo_mode,
)

if TYPE_CHECKING:
    from intercom_fsm.adapters.audio.door import Audio

__all__ = [
    "AlsaDevice",
    "Audio",
    "AudioSettings",
    "AudioSink",
    "AudioSource",
    "AudioStats",
    "EchoMode",
    "NoDevice",
    "ToneSource",
    "parse_audio_sink",
    "parse_audio_source",
    "parse_echo_mode",
]


def __getattr__(name: str) -> object:
    if name == "Audio":
        from intercom_fsm.adapters.audio.door import Audio

        return Audio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
