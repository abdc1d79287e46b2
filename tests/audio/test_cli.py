"""``intercom-fsm devices`` and ``intercom-fsm check-audio`` against the real
sound server, as commands and as the functions behind them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.check import check_audio
from tests.audio.sound_server import MIC_PCM, SPEAKER_PCM, SoundServer

pytestmark = [pytest.mark.e2e]


def command(sound: SoundServer, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercom_fsm", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **sound.environment},
    )


def test_devices_lists_what_opens(sound: SoundServer) -> None:
    result = command(sound, "devices", "--source", MIC_PCM, "--sink", SPEAKER_PCM)
    assert result.returncode == 0, result.stderr
    capture, playback = result.stdout.split("playback devices")
    assert f"ok {MIC_PCM}" in capture
    assert f"ok {SPEAKER_PCM}" in playback
    assert f"-- {MIC_PCM}" in playback  # a monitor cannot be played to


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_check_audio_reports_the_chime_and_what_cancellation_removed(
    sound: SoundServer,
) -> None:
    sound.add_echo_path(latency_ms=30, volume_percent=50)
    report = await check_audio(AudioSettings(source=MIC_PCM, sink=SPEAKER_PCM, echo="cancel"))
    assert not report.problems
    assert report.heard, report
    assert report.removed_db is not None and report.removed_db >= 20, report
    text = "\n".join(report.lines())
    assert "the microphone heard it at" in text and "of the chime removed" in text


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_check_audio_says_when_the_microphone_hears_nothing(sound: SoundServer) -> None:
    report = await check_audio(AudioSettings(source=MIC_PCM, sink=SPEAKER_PCM, echo="cancel"))
    assert not report.problems and not report.heard
    assert "did not hear it" in "\n".join(report.lines())


def test_check_audio_command(sound: SoundServer) -> None:
    sound.add_echo_path(latency_ms=30, volume_percent=50)
    result = command(sound, "check-audio", "--source", MIC_PCM, "--sink", SPEAKER_PCM)
    assert result.returncode == 0, result.stderr
    assert "chime played at" in result.stdout
    assert "dB of the chime removed" in result.stdout

    missing = command(sound, "check-audio", "--source", MIC_PCM, "--sink", "none")
    assert missing.returncode == 1
    assert "no speaker configured (AUDIO_SINK=none)" in missing.stdout
    bad = command(sound, "check-audio", "--echo", "loud")
    assert bad.returncode == 2 and "AUDIO_ECHO" in bad.stderr
