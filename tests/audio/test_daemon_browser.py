"""The sandbox's page in Debian's chromium, with a fake microphone, watching
and talking to the daemon (a process, its audio on the real sound server):
the page plays the door's tone at a steady level, and the door's speaker
plays the page's voice while its talk button is on."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.audio.signals import RATE, band_level_dbfs, level_dbfs, tone
from tests.audio.sound_server import MIC_PCM, SPEAKER_PCM, SoundServer
from tests.audio.test_browser import DOOR_HZ, VIEWER_HZ, browser
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.sandbox.test_browser import WAIT_MS

__all__ = ["browser"]

RECORD_LEVELS = """async (seconds) => {
  // The level of each 512-sample block of what the page receives from the
  // door, for `seconds`: a gap in the sound is a run of quiet blocks.
  const stream = document.getElementById("door-audio").srcObject;
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(512, 1, 1);
  const mute = context.createGain();
  mute.gain.value = 0;
  const levels = [];
  processor.onaudioprocess = (event) => {
    const samples = event.inputBuffer.getChannelData(0);
    let sum = 0;
    for (const value of samples) sum += value * value;
    const power = sum / samples.length;
    levels.push(power > 1e-12 ? 10 * Math.log10(power) : -120);
  };
  source.connect(processor);
  processor.connect(mute);
  mute.connect(context.destination);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  processor.disconnect();
  await context.close();
  return { levels, rate: context.sampleRate };
}"""


def longest_quiet_ms(levels: list[float], rate: float, floor: float = -50.0) -> float:
    longest = run = 0
    for level in levels:
        run = run + 1 if level < floor else 0
        longest = max(longest, run)
    return longest * 512 * 1000 / rate


pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(180)]


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process


@pytest.fixture
def daemon(sandbox: SandboxProcess, sound: SoundServer, tmp_path: Path) -> Iterator[DaemonProcess]:
    environ = daemon_environment(
        sandbox.info,
        tmp_path / "config" / "tokens.json",
        **{"AUDIO_SOURCE": MIC_PCM, "AUDIO_SINK": SPEAKER_PCM, "AUDIO_ECHO": "off"},
        **sound.environment,
    )
    process = DaemonProcess(environ, tmp_path / "daemon.log").start()
    try:
        yield process
    finally:
        process.stop()


async def test_the_page_hears_the_daemons_door_and_talks_to_it(
    browser: Any, sandbox: SandboxProcess, sound: SoundServer, daemon: DaemonProcess
) -> None:
    from playwright.async_api import expect

    sound.play(tone(DOOR_HZ, 5, dbfs=-20), loop=True)
    daemon.wait_for_state("AwaitingApproval")
    link: list[str] = []

    def link_shown(process: DaemonProcess) -> bool:
        link[:] = re.findall(r"(http://\S+user_code=\S+)", process.text())
        return bool(link)

    daemon.wait_until(link_shown, 10, "the verification link in the daemon's output")
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(link[0])
        await page.fill("#id_username", sandbox.info.username)
        await page.fill("#id_password", sandbox.info.password)
        await page.click("#sign-in")
        await page.click("#approve")
        daemon.wait_for_state("Negotiating")
        device = page.locator("button[data-device-code]").first
        await expect(device).to_have_attribute("data-status", "connected", timeout=WAIT_MS)
        await device.click()
        await expect(page.locator("#status")).to_have_text("Streaming.", timeout=WAIT_MS)

        # The door's tone plays in the page, at the right pitch and a steady level.
        await page.wait_for_function(
            "window.intercomAudio.levels().incoming > -40", timeout=WAIT_MS
        )
        await asyncio.sleep(1)  # past the sound's first, settling moments
        samples = []
        for _ in range(10):
            samples.append(await page.evaluate("window.intercomAudio.levels()"))
            await asyncio.sleep(0.5)
        assert all(abs(level["incomingHz"] - DOOR_HZ) < 30 for level in samples), samples
        # No gap over 60 ms in 30 s of what the page receives, at a steady level:
        # 99 % of its 10 ms blocks within 14 dB of the level the page gets
        # of the -20 dBFS tone played into the microphone (-26 dBFS, measured).
        recorded = await page.evaluate(RECORD_LEVELS, 30)
        levels = recorded["levels"]
        assert len(levels) * 512 / recorded["rate"] > 29, len(levels)
        assert longest_quiet_ms(levels, recorded["rate"]) <= 60
        settled = sorted(levels[20:])
        assert settled[len(settled) // 100] > -40, settled[: len(settled) // 100 + 1]
        assert abs(settled[len(settled) // 2] - (-26)) < 3, settled[len(settled) // 2]

        # Not talking: nothing reaches the door's speaker.
        with sound.recording() as recording:
            quiet = await asyncio.to_thread(recording.wait_for, 1.5, 15)
        assert level_dbfs(quiet[-RATE:]) < -70

        # The talk button on: the page's fake microphone plays at the door.
        await page.click("#talk-toggle")
        await expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")
        deadline = time.monotonic() + 15
        while True:
            with sound.recording() as recording:
                heard = await asyncio.to_thread(recording.wait_for, 1.0, 15)
            if band_level_dbfs(heard[-RATE:], VIEWER_HZ, width=40) > -45:
                break
            assert time.monotonic() < deadline, "the page's voice never reached the door"
        # And off again: silence at the door.
        await page.click("#talk-toggle")
        await expect(page.locator("#talk")).to_have_attribute("aria-pressed", "false")
        deadline = time.monotonic() + 10
        while True:
            with sound.recording() as recording:
                heard = await asyncio.to_thread(recording.wait_for, 1.0, 15)
            if band_level_dbfs(heard[-RATE // 2 :], VIEWER_HZ, width=40) < -60:
                break
            assert time.monotonic() < deadline, "the door still plays the page's voice"
    finally:
        await context.close()
