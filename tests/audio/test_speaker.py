"""Viewers' voices to the door's speaker, through real aiortc peers and the
real sound server: mixed, bounded when the clocks drift, silent on underrun."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.door import Audio
from intercom_fsm.events import SpeakerFailed, SpeakerOpened
from tests.audio.conftest import EventRecorder
from tests.audio.peers import SamplesTrack, connect, opened
from tests.audio.signals import RATE, Samples, band_level_dbfs, block_levels, tone
from tests.audio.sound_server import MIC_PCM, SPEAKER_PCM, SoundServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def settings(**changes: object) -> AudioSettings:
    values: dict[str, object] = {"source": MIC_PCM, "sink": SPEAKER_PCM, "echo": "off"}
    values.update(changes)
    return AudioSettings(**values)  # type: ignore[arg-type]


class PausableTrack(SamplesTrack):
    """A talker whose packets stop, as when its network stalls."""

    def __init__(self, samples: Samples) -> None:
        super().__init__(samples)
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def recv(self):  # type: ignore[no-untyped-def]
        await self.flowing.wait()
        return await super().recv()


@pytest.mark.timeout(60)
async def test_two_talking_viewers_are_both_heard(sound: SoundServer) -> None:
    events = EventRecorder()
    audio = Audio(settings(), events)
    async with opened(audio):
        links = [
            await connect(audio, talk=SamplesTrack(tone(500, 2, dbfs=-20)), listen=False),
            await connect(audio, talk=SamplesTrack(tone(1300, 2, dbfs=-20)), listen=False),
        ]
        try:
            deadline = time.monotonic() + 15
            while audio.stats.talking_viewers < 2:
                assert time.monotonic() < deadline, "two viewers talking"
                await asyncio.sleep(0.05)
            with sound.recording() as recording:
                await asyncio.to_thread(recording.wait_for, 3.0, 15)
                heard = recording.samples()[-2 * RATE :]
        finally:
            for link in links:
                await link.close()
    assert events.of(SpeakerOpened) and not events.of(SpeakerFailed)
    # (A drift correction may shift the pitch by up to 2 %.)
    assert band_level_dbfs(heard, 500, width=30) > -26
    assert band_level_dbfs(heard, 1300, width=40) > -26
    assert audio.stats.packets_received > 100


@pytest.mark.parametrize("speed", [1.01, 0.99])
@pytest.mark.timeout(90)
async def test_playout_stays_bounded_when_the_talker_clock_drifts(
    sound: SoundServer, speed: float
) -> None:
    """A talker 1 % fast (or slow) for 30 s would be 300 ms ahead (or
    behind) without correction."""
    chosen = settings(playout_target_ms=40, playout_max_ms=100)
    audio = Audio(chosen, EventRecorder())
    async with opened(audio):
        link = await connect(audio, talk=SamplesTrack(tone(700, 2, dbfs=-20), speed), listen=False)
        try:
            deadline = time.monotonic() + 15
            while audio.stats.talking_viewers < 1:
                assert time.monotonic() < deadline, "the viewer talking"
                await asyncio.sleep(0.05)
            await asyncio.sleep(2)
            first = audio.stats
            depths = []
            for _ in range(300):
                await asyncio.sleep(0.1)
                depths.append(audio.stats.playout_depth_ms)
            last = audio.stats
        finally:
            await link.close()
    assert max(depths) <= chosen.playout_max_ms
    # Steered back near the target, not parked at a bound.
    assert np.mean(depths[-50:]) < chosen.playout_target_ms + 25
    assert last.drift_corrections - first.drift_corrections >= 30
    if speed > 1:
        # A fast talker never runs the buffer dry by drift: a correction that
        # overshot would underrun every few seconds. One stall of the loaded
        # machine longer than the cushion (target plus a frame) is jitter.
        assert last.underruns - first.underruns <= 1


@pytest.mark.timeout(60)
async def test_an_underrun_plays_silence_not_a_repeated_block(sound: SoundServer) -> None:
    audio = Audio(settings(), EventRecorder())
    talker = PausableTrack(tone(900, 2, dbfs=-20))
    async with opened(audio):
        link = await connect(audio, talk=talker, listen=False)
        try:
            with sound.recording() as recording:
                await asyncio.to_thread(recording.wait_for, 2.0, 15)
                underruns = audio.stats.underruns
                talker.flowing.clear()
                stopped_at = recording.seconds()
                await asyncio.to_thread(recording.wait_for, stopped_at + 1.5, 10)
                heard = recording.samples()
                talker.flowing.set()
                await asyncio.to_thread(recording.wait_for, stopped_at + 3.0, 10)
                resumed = recording.samples()[-RATE // 2 :]
        finally:
            await link.close()
    # What was queued (at most the ALSA buffer and the playout buffer, with
    # the parec and sound-server latency) plays out, then silence.
    after = heard[round((stopped_at + 0.5) * RATE) :]
    assert len(after) > RATE // 2
    assert max(block_levels(after)) < -70
    assert audio.stats.underruns > underruns
    assert band_level_dbfs(resumed, 900) > -26
