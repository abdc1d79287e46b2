"""The audio adapter's settings: ``AUDIO_SOURCE``, ``AUDIO_SINK``,
``AUDIO_ECHO`` parsed into typed values, and the tunables around them.

Accepted device names (protocol.md section 3.2):

* ``none``: no device of that kind;
* ``tone`` or ``tone:HZ`` (``AUDIO_SOURCE`` only): a sine test tone, no sound
  card needed (440 Hz unless given, 20..20000 Hz);
* anything else: an ALSA PCM name as ``aplay -L`` / ``arecord -L`` list them
  (``default``, ``hw:1,0``, ``plughw:CARD=Device,DEV=0``, or a PCM the ALSA
  configuration defines). A name with spaces, quotes or control characters is
  refused: no ALSA name has them, and it would end up in logs.

The parsers are pure and raise ``ValueError`` with a message fit to name the
variable in front of it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any

import attrs

DEFAULT_TONE_HZ = 440.0
TONE_PREFIX = "tone"
NONE_NAME = "none"
_ALSA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_:,.=/@+-]*$")
_MAX_NAME = 200


@attrs.frozen
class AlsaDevice:
    name: str

    @property
    def description(self) -> str:
        return f"ALSA {self.name}"


@attrs.frozen
class ToneSource:
    hz: float = DEFAULT_TONE_HZ

    @property
    def description(self) -> str:
        return f"test tone {self.hz:g} Hz"


@attrs.frozen
class NoDevice:
    @property
    def description(self) -> str:
        return "none"


AudioSource = AlsaDevice | ToneSource | NoDevice
AudioSink = AlsaDevice | NoDevice


class EchoMode(enum.Enum):
    CANCEL = "cancel"
    """An acoustic echo canceller (WebRTC AEC3) with the played signal as reference."""
    HALF_DUPLEX = "half-duplex"
    """The microphone is attenuated while a viewer talks."""
    OFF = "off"


def _alsa_name(text: str, variable: str) -> AlsaDevice:
    if len(text) > _MAX_NAME or not _ALSA_NAME.match(text):
        raise ValueError(
            f"{variable} must be an ALSA device name such as default, hw:1,0 or "
            f"plughw:CARD=Device,DEV=0, not {text[:40]!r}"
        )
    return AlsaDevice(text)


def parse_audio_source(text: str, variable: str = "AUDIO_SOURCE") -> AudioSource:
    value = text.strip()
    if value.lower() == NONE_NAME:
        return NoDevice()
    if value.lower() == TONE_PREFIX:
        return ToneSource()
    if value.lower().startswith(TONE_PREFIX + ":"):
        hz_text = value[len(TONE_PREFIX) + 1 :]
        try:
            hz = float(hz_text)
        except ValueError:
            raise ValueError(
                f"{variable}: tone:HZ needs a frequency, not {hz_text[:20]!r}"
            ) from None
        if not 20 <= hz <= 20_000:
            raise ValueError(f"{variable}: the tone must be 20..20000 Hz, not {hz:g}")
        return ToneSource(hz)
    if not value:
        raise ValueError(f"{variable} is empty: give an ALSA device, tone, tone:HZ or none")
    return _alsa_name(value, variable)


def parse_audio_sink(text: str, variable: str = "AUDIO_SINK") -> AudioSink:
    value = text.strip()
    if value.lower() == NONE_NAME:
        return NoDevice()
    if not value:
        raise ValueError(f"{variable} is empty: give an ALSA device or none")
    if value.lower().startswith(TONE_PREFIX):
        raise ValueError(f"{variable} is a playback device: an ALSA name or none")
    return _alsa_name(value, variable)


def parse_echo_mode(text: str, variable: str = "AUDIO_ECHO") -> EchoMode:
    value = text.strip().lower().replace("_", "-")
    for mode in EchoMode:
        if mode.value == value:
            return mode
    choices = ", ".join(mode.value for mode in EchoMode)
    raise ValueError(f"{variable} must be one of {choices}, not {text[:20]!r}")


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive")


def _within(low: float, high: float, unit: str) -> Callable[[object, Any, float], None]:
    def check(_instance: object, attribute: Any, value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"{attribute.name} must be {low:g}..{high:g} {unit}, not {value:g}")

    return check


@attrs.frozen
class AudioSettings:
    """``source``/``sink``/``echo`` as written in the environment; defaults
    suit a board with a USB sound card reached through ALSA's ``default``."""

    source: str = "default"
    sink: str = "default"
    echo: str = "cancel"
    noise_suppression: bool = True
    """WebRTC's noise suppressor on the microphone (level :attr:`noise_level`)."""
    noise_level: int = attrs.field(default=1, validator=attrs.validators.in_(range(4)))
    gain_control: bool = False
    """WebRTC's automatic gain control on the microphone (off: a door panel's
    microphone is set once; on, it also raises the background)."""
    bitrate: int = attrs.field(
        default=32_000, validator=attrs.validators.in_(range(6_000, 510_001))
    )
    """Opus bits/s of the shared microphone stream."""
    playout_target_ms: float = attrs.field(default=40.0, validator=_within(10, 60, "ms"))
    """The playout buffer's depth it steers to, per talking viewer."""
    playout_max_ms: float = attrs.field(default=100.0, validator=_within(20, 400, "ms"))
    """Beyond this the oldest sound is dropped at once."""
    device_latency_ms: float = attrs.field(default=40.0, validator=_within(10, 200, "ms"))
    """The ALSA buffer asked of the speaker (and half of it of the microphone)."""
    half_duplex_attenuation_db: float = attrs.field(default=30.0, validator=_within(0, 80, "dB"))
    """How much quieter the microphone is while a viewer talks, in half-duplex."""
    reopen_base: float = attrs.field(default=0.5, validator=_positive)
    reopen_cap: float = attrs.field(default=10.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        parse_audio_source(self.source)
        parse_audio_sink(self.sink)
        parse_echo_mode(self.echo)
        if self.reopen_cap < self.reopen_base:
            raise ValueError("reopen_cap must not be less than reopen_base")
        if self.playout_max_ms < self.playout_target_ms + 10:
            raise ValueError("playout_max_ms must exceed playout_target_ms by 10 ms or more")

    @property
    def microphone(self) -> AudioSource:
        return parse_audio_source(self.source)

    @property
    def speaker(self) -> AudioSink:
        return parse_audio_sink(self.sink)

    @property
    def echo_mode(self) -> EchoMode:
        return parse_echo_mode(self.echo)


@attrs.frozen
class AudioStats:
    """A snapshot of the audio adapter's counters since it was created."""

    packets_sent: int = 0
    """Opus packets handed to listening viewers' senders, summed over viewers."""
    packets_encoded: int = 0
    """Opus packets encoded (once each, for every listener)."""
    packets_received: int = 0
    """Audio frames received from talking viewers, summed over talkers."""
    packets_dropped: int = 0
    """Packets a listener never got because it fell behind (its queue was full)."""
    playout_depth_ms: float = 0.0
    """The deepest talker's playout buffer right now."""
    underruns: int = 0
    """Times a talker's playout buffer ran dry while it talked (silence played)."""
    drift_corrections: int = 0
    """Blocks played slightly faster or slower, or sound dropped, to hold the depth."""
    erle_db: float | None = None
    """Echo return loss enhancement: how far the canceller lowered the echo
    while the speaker played (None before it has played)."""
    reference_resyncs: int = 0
    """Times the canceller's reference was realigned with what the speaker
    played (a clock drifting, a device reopened): the canceller re-adapts
    after each, and the echo may leak for a moment."""
    talking_viewers: int = 0
    listening_viewers: int = 0
    microphone_online: bool = False
    speaker_online: bool = False
    capture_overruns: int = 0
    """Times the microphone's ALSA buffer overflowed (sound lost, latency kept)."""
    playback_underruns: int = 0
    """Times the speaker's ALSA buffer ran dry."""
    microphone_failures: int = 0
    speaker_failures: int = 0
