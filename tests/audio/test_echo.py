"""Echo at the door: the speaker's sound goes back into the microphone
through the sound server (a loopback, 30 ms late and 18 dB down, as on a
door panel), and what viewers would hear from the microphone is measured
with AUDIO_ECHO off, cancel and half-duplex."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.blocks import Samples
from intercom_fsm.adapters.audio.door import Audio
from tests.audio.conftest import EventRecorder, eventually
from tests.audio.peers import SamplesTrack, connect, opened
from tests.audio.signals import (
    RATE,
    band_level_dbfs,
    level_dbfs,
    tone,
    typical_level_dbfs,
    voice,
)
from tests.audio.sound_server import MIC_PCM, SPEAKER_PCM, SoundServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CONVERGE = 4.0
MEASURE = 4.0
NEAR_HZ = 1000.0


async def heard_at_the_door(sound: SoundServer, echo: str, near_voice: bool) -> Samples:
    """A viewer talks for CONVERGE + MEASURE s; the microphone's processed
    sound of the last MEASURE s (with a tone at the door if ``near_voice``)."""
    audio = Audio(AudioSettings(source=MIC_PCM, sink=SPEAKER_PCM, echo=echo), EventRecorder())
    captured: list[Samples] = []
    async with opened(audio):
        link = await connect(audio, talk=SamplesTrack(voice(20, dbfs=-20)), listen=False)
        try:
            await eventually(lambda: audio.stats.talking_viewers == 1, 15, "talking")
            await asyncio.sleep(CONVERGE)
            player = sound.play(tone(NEAR_HZ, MEASURE + 1, dbfs=-30)) if near_voice else None

            def tap(block: Samples, _at: float) -> None:
                captured.append(block.copy())

            audio.add_tap(tap)
            await asyncio.sleep(MEASURE)
            audio.remove_tap(tap)
            if player is not None:
                player.stop()
        finally:
            await link.close()
    return np.concatenate(captured)[: round(MEASURE * RATE) - RATE // 2]


@pytest.fixture
def echoing(sound: SoundServer) -> SoundServer:
    sound.add_echo_path(latency_ms=30, volume_percent=50)
    return sound


@pytest.mark.timeout(120)
async def test_cancel_removes_the_echo_and_keeps_the_voice_at_the_door(
    echoing: SoundServer,
) -> None:
    off = await heard_at_the_door(echoing, "off", near_voice=False)
    cancelled = await heard_at_the_door(echoing, "cancel", near_voice=False)
    echo_off, echo_cancelled = typical_level_dbfs(off), typical_level_dbfs(cancelled)
    assert echo_off > -50, "the echo path must be audible to begin with"
    print(f"echo off {echo_off:.1f} dBFS, cancelled {echo_cancelled:.1f} dBFS")
    # Over the whole stretch, too, far less than without (a moment's re-adapting included).
    assert echo_off - echo_cancelled >= 25, (echo_off, echo_cancelled, level_dbfs(cancelled))
    assert level_dbfs(off) - level_dbfs(cancelled) >= 15, (level_dbfs(off), level_dbfs(cancelled))

    # Double talk: a voice at the door (a 1 kHz tone, -30 dBFS) while the viewer talks.
    with_voice = await heard_at_the_door(echoing, "cancel", near_voice=True)
    print(f"voice at the door while cancelling: {band_level_dbfs(with_voice, NEAR_HZ):.1f} dBFS")
    assert band_level_dbfs(with_voice, NEAR_HZ) > -30 - 6


@pytest.mark.timeout(90)
async def test_half_duplex_attenuates_the_microphone_while_a_viewer_talks(
    echoing: SoundServer,
) -> None:
    echo_off = level_dbfs(await heard_at_the_door(echoing, "off", near_voice=True))
    half_duplex = await heard_at_the_door(echoing, "half-duplex", near_voice=True)
    # The whole microphone is 30 dB down while the viewer talks, the door's voice too.
    assert echo_off - level_dbfs(half_duplex) >= 25
    assert band_level_dbfs(half_duplex, NEAR_HZ) < -30 - 25
