"""Two-way audio end to end: the daemon as a process against the sandbox,
reaching a real sound server through ALSA as it reaches a sound card on a
board, and aiortc viewers through the sandbox's viewer socket.

The door's microphone is a tone played into the sound server's microphone
sink; the door's speaker is recorded from the speaker sink's monitor.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import numpy as np
import pytest

from intercom_fsm.adapters.audio.blocks import BLOCK
from intercom_fsm.adapters.audio.playout import MAX_STRETCH
from intercom_fsm.sandbox.process import SandboxProcess
from tests.audio.daemon_viewer import AudioViewer
from tests.audio.peers import SamplesTrack
from tests.audio.signals import (
    RATE,
    band_level_dbfs,
    block_levels,
    dominant_hz,
    level_dbfs,
    longest_gap_ms,
    quiet_runs,
    tone,
    typical_level_dbfs,
    voice,
)
from tests.audio.sound_server import MIC_PCM, MIC_SINK, SPEAKER_PCM, SPEAKER_SINK, SoundServer
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import DaemonProcess, daemon_environment

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(180)]

FPS = 10
DOOR_HZ = 750.0
VIEWER_HZ = 1200.0
SECOND_VIEWER_HZ = 500.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process


def start_daemon(
    sandbox: SandboxProcess, sound: SoundServer, tmp_path: Path, **overrides: str
) -> DaemonProcess:
    settings = {
        "HEALTH_ADDRESS": f"127.0.0.1:{unused_port()}",
        "AUDIO_SOURCE": MIC_PCM,
        "AUDIO_SINK": SPEAKER_PCM,
        "AUDIO_ECHO": "off",
        **sound.environment,
        **overrides,
    }
    environ = daemon_environment(sandbox.info, tmp_path / "config" / "tokens.json", **settings)
    return DaemonProcess(environ, tmp_path / "daemon.log").start()


@pytest.fixture
def daemon(sandbox: SandboxProcess, sound: SoundServer, tmp_path: Path) -> Iterator[DaemonProcess]:
    process = start_daemon(sandbox, sound, tmp_path)
    try:
        yield process
    finally:
        process.stop()


async def streaming_viewer(
    sandbox: SandboxProcess, device_code: str, **options: object
) -> AudioViewer:
    # Started apart: MediaViewer.start() is typed to return a MediaViewer.
    viewer = AudioViewer(sandbox.info, device_code, **options)  # type: ignore[arg-type]
    await viewer.start()
    await viewer.wait_for_frames(5)
    return viewer


async def heard_for(viewer: AudioViewer, seconds: float) -> np.ndarray:
    deadline = time.monotonic() + 10
    while viewer.heard is None:
        assert time.monotonic() < deadline, "the viewer got no audio track"
        await asyncio.sleep(0.05)
    viewer.heard.clear()
    return await viewer.heard.wait_for(seconds, seconds + 15)


def speaker_hears(sound: SoundServer, seconds: float) -> np.ndarray:
    with sound.recording() as recording:
        time.sleep(seconds)
        return recording.samples()


TALK_BACK_METRICS = (
    "packets_received_total",
    "underruns_total",
    "drift_corrections_total",
    "playback_underruns_total",
    "playout_depth_ms",
    "talking_viewers",
)


def played_level(at_door: np.ndarray, hz: float) -> float:
    """The level of a talker's ``hz`` tone on the speaker. The playout holds
    its depth by playing blocks up to MAX_STRETCH faster or slower, which
    moves the tone by as much: the band is that wide, and a little more."""
    return band_level_dbfs(at_door, hz, width=hz * MAX_STRETCH / BLOCK + 20)


async def talk_back(daemon: DaemonProcess, at_door: np.ndarray) -> str:
    """What the speaker played, 100 ms at a time, and the daemon's playout
    figures: what a failed talk-back check needs to be understood."""
    levels = [round(level) for level in block_levels(at_door, RATE // 10)]
    figures = await audio_metrics(daemon.environ["HEALTH_ADDRESS"], TALK_BACK_METRICS)
    return f"speaker levels (dBFS per 100 ms): {levels}; daemon: {figures}"


DOOR_TO_VIEWER_METRICS = (
    "packets_encoded_total",
    "packets_sent_total",
    "packets_dropped_total",
    "capture_overruns_total",
    "listening_viewers",
)


async def door_to_viewer(daemon: DaemonProcess, heard: np.ndarray) -> str:
    """Where the viewer heard gaps, the daemon's microphone figures and the
    machine's load: what a failed steadiness check needs to be understood."""
    gaps = [(round(at, 2), length) for at, length in quiet_runs(heard, -50) if length >= 30]
    figures = await audio_metrics(daemon.environ["HEALTH_ADDRESS"], DOOR_TO_VIEWER_METRICS)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"gaps of 30 ms or more (s, ms): {gaps}; daemon: {figures}; load average: {load}"


def said(daemon: DaemonProcess, text: str) -> int:
    """Lines for the operator (warnings) that say ``text``."""
    return sum(
        1
        for record in daemon.records()
        if record.get("level") == "warning" and text in str(record.get("msg", ""))
    )


async def test_a_viewer_hears_the_door_steadily_and_talks_to_it(
    sandbox: SandboxProcess, sound: SoundServer, daemon: DaemonProcess
) -> None:
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    sound.play(tone(DOOR_HZ, 5, dbfs=-20), loop=True)
    talk = SamplesTrack(tone(VIEWER_HZ, 5, dbfs=-20))
    viewer = await streaming_viewer(sandbox, device_code, audio="sendrecv", talk=talk)
    second: AudioViewer | None = None
    try:
        assert viewer.answer_sdp is not None and "a=sendrecv" in viewer.answer_sdp
        await heard_for(viewer, 2.0)  # settled
        start = time.monotonic()
        heard = await heard_for(viewer, 30.0)
        elapsed = time.monotonic() - start
        # The door's tone, at a steady level, with no gap over 60 ms in 30 s.
        assert abs(dominant_hz(heard) - DOOR_HZ) < 10
        levels = [level for level in block_levels(heard) if level > -60]
        assert len(levels) > 0.99 * len(block_levels(heard))
        assert np.std(levels) < 2.0, np.std(levels)
        assert longest_gap_ms(heard, floor_dbfs=-50) <= 60, await door_to_viewer(daemon, heard)
        # Video went on beside it.
        assert viewer.frames_between(start, start + elapsed) >= 0.9 * FPS * elapsed

        # The viewer's voice plays on the door's speaker; a second talker is mixed in.
        at_door = await asyncio.to_thread(speaker_hears, sound, 3.0)
        assert played_level(at_door, VIEWER_HZ) > -35, await talk_back(daemon, at_door)
        second = await streaming_viewer(
            sandbox,
            device_code,
            audio="sendrecv",
            talk=SamplesTrack(tone(SECOND_VIEWER_HZ, 5, dbfs=-20)),
        )
        await heard_for(second, 1.0)
        at_door = await asyncio.to_thread(speaker_hears, sound, 3.0)
        assert played_level(at_door, VIEWER_HZ) > -35, await talk_back(daemon, at_door)
        assert played_level(at_door, SECOND_VIEWER_HZ) > -35, await talk_back(daemon, at_door)
    finally:
        if second is not None:
            await second.close()
        await viewer.close()


async def test_the_devices_vanish_and_come_back_while_video_goes_on(
    sandbox: SandboxProcess, sound: SoundServer, daemon: DaemonProcess
) -> None:
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    sound.play(tone(DOOR_HZ, 5, dbfs=-20), loop=True)
    viewer = await streaming_viewer(sandbox, device_code, audio="recvonly")
    try:
        await heard_for(viewer, 1.0)
        start = time.monotonic()
        sound.remove_sink(MIC_SINK)
        sound.remove_sink(SPEAKER_SINK)
        daemon.wait_until(
            lambda d: (
                said(d, "microphone unavailable, video goes on") == 1
                and said(d, "speaker unavailable, video goes on") == 1
            ),
            15,
            "the daemon to say once that each device is gone",
        )
        await asyncio.sleep(2)  # it keeps trying meanwhile
        sound.add_sink(MIC_SINK)
        sound.add_sink(SPEAKER_SINK)
        sound.stop_children()
        sound.play(tone(DOOR_HZ, 5, dbfs=-20), loop=True)
        # Audio comes back by itself: no new offer, the same connection.
        heard = await heard_for(viewer, 2.0)
        assert band_level_dbfs(heard, DOOR_HZ) > -35
        elapsed = time.monotonic() - start
        assert viewer.frames_between(start, start + elapsed) >= 0.9 * FPS * elapsed
        assert viewer.longest_gap(start, start + elapsed) < 0.6
        assert said(daemon, "microphone unavailable") == 1
        offers = [m for m in sandbox.control.messages(device_code) if '"offer"' in (m.text or "")]
        assert len(offers) == 1
    finally:
        await viewer.close()


def only_pcmu(sdp: str) -> str:
    """The audio section offering PCMU alone, a codec the device does not use."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    in_audio = False
    for line in lines:
        if line.startswith("m="):
            in_audio = line.startswith("m=audio")
            if in_audio:
                fields = line.split()
                line = " ".join([*fields[:3], "0"])
        elif (
            in_audio
            and line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"))
            and not line.startswith("a=rtpmap:0 ")
        ):
            continue
        out.append(line)
    return "\r\n".join(out)


async def test_offers_the_door_cannot_fully_answer_touch_no_one_else(
    sandbox: SandboxProcess, sound: SoundServer, daemon: DaemonProcess
) -> None:
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    sound.play(tone(DOOR_HZ, 5, dbfs=-20), loop=True)
    watcher = await streaming_viewer(sandbox, device_code, audio="recvonly")
    odd: list[AudioViewer] = []
    try:
        start = time.monotonic()
        opened = daemon.text().count("signaling: socket open")
        # Two audio sections: the first is the door's, the second inactive.
        twice = await streaming_viewer(sandbox, device_code, audio="recvonly", audio_sections=2)
        odd.append(twice)
        answer = twice.answer_sdp or ""
        audio_sections = answer.split("m=audio")[1:]
        assert len(audio_sections) == 2
        assert "a=sendonly" in audio_sections[0] and "a=inactive" in audio_sections[1]
        # Only a codec the door cannot use: audio inactive, video as usual.
        pcmu = await streaming_viewer(sandbox, device_code, audio="recvonly", offer_edit=only_pcmu)
        odd.append(pcmu)
        answer = pcmu.answer_sdp or ""
        assert "a=inactive" in answer.split("m=audio")[1]
        assert pcmu.frame_times
        # Audio alone: answered with audio alone.
        alone = AudioViewer(sandbox.info, device_code, audio="recvonly", video=False)
        await alone.start()
        odd.append(alone)
        await heard_for(alone, 1.0)
        assert "m=video" not in (alone.answer_sdp or "")
        # The socket and the first viewer were never touched.
        elapsed = time.monotonic() - start
        assert daemon.text().count("signaling: socket open") == opened
        assert watcher.frames_between(start, start + elapsed) >= 0.9 * FPS * elapsed
        assert band_level_dbfs(await heard_for(watcher, 1.0), DOOR_HZ) > -35
    finally:
        for viewer in odd:
            await viewer.close()
        await watcher.close()


CONVERGE = 4.0
MEASURE = 4.0
NEAR_HZ = 1000.0


@attrs.frozen
class WhatTheViewerHeard:
    level: float
    """Of what the viewer heard over MEASURE s most of the time (the median
    500 ms), in dBFS."""
    mean_level: float
    """Of all it heard over MEASURE s."""
    near_level: float
    """Of the 1 kHz voice at the door, in dBFS."""
    canceller: dict[str, float]
    """The daemon's own audio metrics at the end (ERLE, reference resyncs)."""


async def what_a_talking_viewer_hears(
    sandbox: SandboxProcess,
    sound: SoundServer,
    tmp_path: Path,
    echo: str,
    near_voice: bool,
) -> WhatTheViewerHeard:
    """A viewer talks (a voice) while the door's speaker echoes into its
    microphone; what the viewer hears over MEASURE s after CONVERGE s."""
    directory = tmp_path / f"{echo}-{'near' if near_voice else 'echo'}"
    directory.mkdir()
    daemon = start_daemon(sandbox, sound, directory, AUDIO_ECHO=echo)
    try:
        device_code = approve_pending(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        talk = SamplesTrack(voice(30, dbfs=-20))
        viewer = await streaming_viewer(sandbox, device_code, audio="sendrecv", talk=talk)
        try:
            await heard_for(viewer, CONVERGE)
            player = sound.play(tone(NEAR_HZ, MEASURE + 2, dbfs=-30)) if near_voice else None
            heard = await heard_for(viewer, MEASURE)
            if player is not None:
                player.stop()
            canceller = await audio_metrics(
                daemon.environ["HEALTH_ADDRESS"], ("erle_db", "reference_resyncs_total")
            )
        finally:
            await viewer.close()
    finally:
        daemon.stop()
    return WhatTheViewerHeard(
        typical_level_dbfs(heard), level_dbfs(heard), band_level_dbfs(heard, NEAR_HZ), canceller
    )


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def audio_metrics(health: str, names: tuple[str, ...]) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{health}/metrics") as response,
    ):
        text = await response.text()
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key.removeprefix("intercom_fsm_audio_") in names:
            values[key.removeprefix("intercom_fsm_audio_")] = float(value)
    return values


@pytest.fixture
def echoing(sound: SoundServer) -> SoundServer:
    """The speaker's sound back into the microphone, 30 ms late and 18 dB
    down, as on a door panel (removed after the test)."""
    sound.add_echo_path(latency_ms=30, volume_percent=50)
    return sound


@pytest.mark.timeout(240)
async def test_the_viewer_does_not_hear_itself_and_still_hears_the_door(
    sandbox: SandboxProcess, echoing: SoundServer, tmp_path: Path
) -> None:
    echo_off = await what_a_talking_viewer_hears(sandbox, echoing, tmp_path, "off", False)
    cancelled = await what_a_talking_viewer_hears(sandbox, echoing, tmp_path, "cancel", False)
    assert echo_off.level > -50, "the echo path must be audible to begin with"
    assert echo_off.level - cancelled.level >= 25, (echo_off, cancelled)
    # Over the whole stretch, too, far less than without (a moment's re-adapting included).
    assert echo_off.mean_level - cancelled.mean_level >= 15, (echo_off, cancelled)
    # The daemon's own figure for operators tells cancelling from not.
    assert echo_off.canceller["erle_db"] < 5, echo_off
    assert cancelled.canceller["erle_db"] >= 15, cancelled
    # Double talk: a voice at the door while the viewer talks gets through.
    double_talk = await what_a_talking_viewer_hears(sandbox, echoing, tmp_path, "cancel", True)
    assert double_talk.near_level > -30 - 6, double_talk
    # Half-duplex: the microphone, the door's voice with it, is lowered while the viewer talks.
    lowered = await what_a_talking_viewer_hears(sandbox, echoing, tmp_path, "half-duplex", True)
    assert lowered.near_level < -30 - 20, lowered
