"""The door's microphone to viewers, through the real sound server and real
aiortc peers: the tone played into the microphone is what viewers hear."""

from __future__ import annotations

import asyncio

import pytest

from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.door import Audio
from intercom_fsm.events import MicrophoneFailed, MicrophoneOpened
from tests.audio.conftest import EventRecorder, eventually
from tests.audio.peers import connect, opened
from tests.audio.signals import (
    RATE,
    band_level_dbfs,
    block_levels,
    dominant_hz,
    longest_gap_ms,
    tone,
)
from tests.audio.sound_server import MIC_PCM, SPEAKER_PCM, SoundServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def settings(**changes: object) -> AudioSettings:
    values: dict[str, object] = {"source": MIC_PCM, "sink": SPEAKER_PCM, "echo": "off"}
    values.update(changes)
    return AudioSettings(**values)  # type: ignore[arg-type]


@pytest.mark.timeout(60)
async def test_viewer_hears_the_tone_at_the_door_steady_and_without_gaps(
    sound: SoundServer,
) -> None:
    sound.play(tone(1000, 5, dbfs=-20), loop=True)
    events = EventRecorder()
    audio = Audio(settings(noise_suppression=False), events)
    async with opened(audio):
        link = await connect(audio)
        try:
            assert link.heard is not None
            await link.heard.wait_for(1.0, 15)  # settled
            link.heard.clear()
            heard = await link.heard.wait_for(8.0, 20)
        finally:
            await link.close()
    assert len(events.of(MicrophoneOpened)) == 1
    assert not events.of(MicrophoneFailed)
    assert abs(dominant_hz(heard) - 1000) < 5
    levels = block_levels(heard[RATE // 10 :], block=RATE // 10)
    assert max(levels) - min(levels) < 1.5, levels
    assert abs(band_level_dbfs(heard, 1000) - -20) < 3
    assert longest_gap_ms(heard, floor_dbfs=-40) <= 60


@pytest.mark.timeout(60)
async def test_viewers_share_one_capture_and_one_encoding(sound: SoundServer) -> None:
    sound.play(tone(600, 5, dbfs=-20), loop=True)
    audio = Audio(settings(), EventRecorder())
    async with opened(audio):
        links = [await connect(audio) for _ in range(3)]
        try:
            for link in links:
                assert link.heard is not None
                await link.heard.wait_for(1.0, 15)
            encoded_before = audio.stats.packets_encoded
            sent_before = audio.stats.packets_sent
            await asyncio.sleep(0)
            for link in links:
                assert link.heard is not None
                link.heard.clear()
            for link in links:
                assert link.heard is not None
                heard = await link.heard.wait_for(2.0, 10)
                assert abs(dominant_hz(heard) - 600) < 5
            stats = audio.stats
            encoded = stats.packets_encoded - encoded_before
            sent = stats.packets_sent - sent_before
            assert stats.listening_viewers == 3
            # Each packet is encoded once and sent to the three of them.
            assert sent >= 3 * encoded - 9 and sent <= 3 * encoded + 9, (encoded, sent)
            assert encoded >= 90
        finally:
            for link in links:
                await link.close()
        await eventually(lambda: audio.stats.listening_viewers == 0, 5, "listeners left")


@pytest.mark.timeout(30)
async def test_tone_source_needs_no_sound_card() -> None:
    audio = Audio(AudioSettings(source="tone:880", sink="none", echo="off"), EventRecorder())
    async with opened(audio):
        link = await connect(audio)
        try:
            assert link.heard is not None
            heard = await link.heard.wait_for(2.0, 15)
        finally:
            await link.close()
    assert abs(dominant_hz(heard[RATE // 2 :]) - 880) < 5
