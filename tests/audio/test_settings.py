"""AUDIO_SOURCE / AUDIO_SINK / AUDIO_ECHO as written in the environment."""

from __future__ import annotations

import pytest

from intercom_fsm.adapters.audio import (
    AlsaDevice,
    AudioSettings,
    EchoMode,
    NoDevice,
    ToneSource,
    parse_audio_sink,
    parse_audio_source,
    parse_echo_mode,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("default", AlsaDevice("default")),
        ("hw:1,0", AlsaDevice("hw:1,0")),
        ("plughw:CARD=Device,DEV=0", AlsaDevice("plughw:CARD=Device,DEV=0")),
        ("door_mic", AlsaDevice("door_mic")),
        ("sysdefault:CARD=sndrpii2scard", AlsaDevice("sysdefault:CARD=sndrpii2scard")),
        (" tone ", ToneSource(440.0)),
        ("tone:1000", ToneSource(1000.0)),
        ("TONE:523.25", ToneSource(523.25)),
        ("none", NoDevice()),
        ("None", NoDevice()),
    ],
)
def test_sources(text: str, expected: object) -> None:
    assert parse_audio_source(text) == expected


@pytest.mark.parametrize(
    "text", ["", "tone:", "tone:abc", "tone:5", "tone:30000", "hw:1 0", "a'b", "x\ny", "é"]
)
def test_bad_sources_name_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="AUDIO_SOURCE"):
        parse_audio_source(text)


def test_sinks() -> None:
    assert parse_audio_sink("plughw:CARD=Device,DEV=0") == AlsaDevice("plughw:CARD=Device,DEV=0")
    assert parse_audio_sink("none") == NoDevice()
    for bad in ("", "tone", "tone:440", "hw 1"):
        with pytest.raises(ValueError, match="AUDIO_SINK"):
            parse_audio_sink(bad)


def test_echo_modes() -> None:
    assert parse_echo_mode("cancel") is EchoMode.CANCEL
    assert parse_echo_mode("half-duplex") is EchoMode.HALF_DUPLEX
    assert parse_echo_mode("HALF_DUPLEX") is EchoMode.HALF_DUPLEX
    assert parse_echo_mode("off") is EchoMode.OFF
    with pytest.raises(ValueError, match="AUDIO_ECHO must be one of cancel, half-duplex, off"):
        parse_echo_mode("loud")


def test_defaults_suit_a_usb_sound_card() -> None:
    settings = AudioSettings()
    assert settings.microphone == AlsaDevice("default")
    assert settings.speaker == AlsaDevice("default")
    assert settings.echo_mode is EchoMode.CANCEL
    assert settings.playout_target_ms <= 60


def test_settings_refuse_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="playout_target_ms"):
        AudioSettings(playout_target_ms=80)
    with pytest.raises(ValueError, match="playout_max_ms"):
        AudioSettings(playout_target_ms=40, playout_max_ms=45)
    with pytest.raises(ValueError, match="AUDIO_ECHO"):
        AudioSettings(echo="loud")
