"""A device that goes away and comes back (its sound-server sink unloaded and
loaded again, as a USB sound card pulled out and plugged in): one failure
event, one recovery event, and the sound resumes by itself."""

from __future__ import annotations

import asyncio

import pytest

from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.door import Audio
from intercom_fsm.events import (
    MicrophoneFailed,
    MicrophoneOpened,
    MicrophoneRecovered,
    SpeakerFailed,
    SpeakerOpened,
    SpeakerRecovered,
)
from tests.audio.conftest import EventRecorder, eventually
from tests.audio.peers import SamplesTrack, connect, opened
from tests.audio.signals import band_level_dbfs, dominant_hz, tone
from tests.audio.sound_server import MIC_PCM, MIC_SINK, SPEAKER_PCM, SPEAKER_SINK, SoundServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def settings() -> AudioSettings:
    return AudioSettings(
        source=MIC_PCM, sink=SPEAKER_PCM, echo="off", reopen_base=0.2, reopen_cap=1.0
    )


@pytest.mark.timeout(90)
async def test_the_microphone_comes_back_without_a_new_connection(sound: SoundServer) -> None:
    events = EventRecorder()
    audio = Audio(settings(), events)
    async with opened(audio):
        sound.play(tone(750, 5, dbfs=-20), loop=True)
        link = await connect(audio)
        try:
            assert link.heard is not None
            await link.heard.wait_for(1.0, 15)
            sound.remove_sink(MIC_SINK)
            await eventually(lambda: bool(events.of(MicrophoneFailed)), 10, "microphone failed")
            await asyncio.sleep(2)  # retries meanwhile, the device still gone
            sound.add_sink(MIC_SINK)
            sound.stop_children()
            sound.play(tone(750, 5, dbfs=-20), loop=True)
            await eventually(lambda: bool(events.of(MicrophoneRecovered)), 15, "recovered")
            link.heard.clear()
            heard = await link.heard.wait_for(2.0, 15)
        finally:
            await link.close()
    assert [type(e) for e in events.events if type(e).__name__.startswith("Microphone")] == [
        MicrophoneOpened,
        MicrophoneFailed,
        MicrophoneRecovered,
    ]
    assert abs(dominant_hz(heard[-48_000:]) - 750) < 5
    assert len(events.threads) == 1  # all on the loop thread


@pytest.mark.timeout(90)
async def test_the_speaker_comes_back_and_plays_again(sound: SoundServer) -> None:
    events = EventRecorder()
    audio = Audio(settings(), events)
    async with opened(audio):
        link = await connect(audio, talk=SamplesTrack(tone(650, 2, dbfs=-20)), listen=False)
        try:
            await eventually(lambda: audio.stats.talking_viewers == 1, 15, "talking")
            sound.remove_sink(SPEAKER_SINK)
            await eventually(lambda: bool(events.of(SpeakerFailed)), 10, "speaker failed")
            await asyncio.sleep(2)
            sound.add_sink(SPEAKER_SINK)
            await eventually(lambda: bool(events.of(SpeakerRecovered)), 15, "recovered")
            with sound.recording() as recording:
                await asyncio.to_thread(recording.wait_for, 2.0, 15)
                heard = recording.samples()[-48_000:]
        finally:
            await link.close()
    assert [type(e) for e in events.events if type(e).__name__.startswith("Speaker")] == [
        SpeakerOpened,
        SpeakerFailed,
        SpeakerRecovered,
    ]
    assert band_level_dbfs(heard, 650) > -26
