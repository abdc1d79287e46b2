"""The monitor page's audio in Debian's chromium, against the sandbox and a
device made of the real peer and audio adapters in this process: the page
plays the door's tone, and its (fake) microphone reaches the door's speaker
only while the talk button is on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm import events as ev
from intercom_fsm.adapters.audio import AudioSettings
from intercom_fsm.adapters.audio.door import Audio
from intercom_fsm.adapters.peer import PeerConnections
from intercom_fsm.adapters.peer_audio import PeerAudio
from intercom_fsm.events import IceCandidate
from intercom_fsm.sandbox.process import SandboxInfo
from tests.audio.conftest import EventRecorder
from tests.audio.signals import RATE, band_level_dbfs, level_dbfs, tone
from tests.audio.sound_server import SPEAKER_PCM, SoundServer
from tests.loopback import LOOPBACK_PEERS
from tests.sandbox.conftest import device, http, info, sandbox  # noqa: F401
from tests.sandbox.media import loopback_only
from tests.sandbox.peers import ScriptedDevice
from tests.sandbox.test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _browser_missing

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(120)]

DOOR_HZ = 700
VIEWER_HZ = 523


def fake_microphone(path: Path) -> Path:
    """The viewer's voice: a 523 Hz tone in syllables, 3 a second."""
    t = np.arange(4 * RATE) / RATE
    envelope = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    samples = (tone(VIEWER_HZ, 4, dbfs=-15) * envelope).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


class Door:
    """The device's side: the sandbox's device socket, the peer adapter and
    the audio adapter (a tone for a microphone, the sound server's speaker)."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, audio: Audio) -> None:
        self.socket = socket
        self.events = EventRecorder()
        self.peers = PeerConnections(LOOPBACK_PEERS, self, self._on_event, PeerAudio(audio))
        self.sessions: dict[str, int] = {}
        self.answers: list[str] = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    def track_for_viewer(self) -> MediaStreamTrack:
        return VideoStreamTrack()

    def _on_event(self, event: ev.Event) -> None:
        self.events(event)
        if isinstance(event, ev.AnswerReady):
            self.answers.append(event.sdp)
            message = {"type": "answer", "sdp": event.sdp, "session": event.session}
            asyncio.get_running_loop().create_task(self.socket.send_str(json.dumps(message)))

    async def _run(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            session = data.get("session") or ""
            if data["type"] == "offer":
                self.sessions[session] = len(self.sessions) + 1
                await self.peers.create(session, self.sessions[session], data["sdp"])
            elif data["type"] == "ice" and session in self.sessions:
                raw = data.get("candidate") or {}
                candidate = IceCandidate(
                    raw.get("candidate", ""), raw.get("sdpMid"), raw.get("sdpMLineIndex")
                )
                await self.peers.add_candidate(session, self.sessions[session], candidate)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.peers.close_all()
        await self.socket.close()


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _browser_missing("the playwright package is not installed")
    if shutil.which(CHROMIUM) is None:
        _browser_missing(f"{CHROMIUM} is missing (Debian package 'chromium')")
    arguments = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_microphone(tmp_path / 'viewer.wav')}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=arguments)
        try:
            yield launched
        finally:
            await launched.close()


async def test_the_page_hears_the_door_and_talks_to_it(
    browser: Any,
    device: ScriptedDevice,  # noqa: F811
    info: SandboxInfo,  # noqa: F811
    sound: SoundServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.async_api import expect

    loopback_only(monkeypatch)
    audio = Audio(
        AudioSettings(source=f"tone:{DOOR_HZ}", sink=SPEAKER_PCM, echo="off"), EventRecorder()
    )
    await audio.open_microphone()
    await audio.open_speaker()
    context = await browser.new_context()
    page = await context.new_page()
    flow = await device.start_flow()
    await page.goto(flow.verification_uri_complete)
    await page.fill("#id_username", info.username)
    await page.fill("#id_password", info.password)
    await page.click("#sign-in")
    await page.click("#approve")
    grant = await device.poll_until_tokens(flow)
    door = Door(await device.connect(grant.device_code, grant.access_token), audio)
    try:
        entry = page.locator(f'button[data-device-code="{grant.device_code}"]')
        await expect(entry).to_have_attribute("data-status", "connected", timeout=WAIT_MS)
        await entry.click()
        await expect(page.locator("#status")).to_have_text("Streaming.", timeout=WAIT_MS)
        assert "a=sendrecv" in door.answers[0].split("m=audio")[1]

        # The door's tone plays in the page.
        await page.wait_for_function(
            "window.intercomAudio.levels().incoming > -40", timeout=WAIT_MS
        )
        # In the sound's first moments the browser's jitter buffer and the
        # analyser (its spectrum smoothed over past frames) are still settling.
        await asyncio.sleep(1)
        samples = []
        for _ in range(6):
            samples.append(await page.evaluate("window.intercomAudio.levels()"))
            await asyncio.sleep(0.5)
        assert all(abs(level["incomingHz"] - DOOR_HZ) < 30 for level in samples), samples
        level_in = float(await page.locator("#level-in").get_attribute("data-db") or "-90")
        assert level_in > -40

        # Not talking: nothing reaches the speaker.
        with sound.recording() as recording:
            quiet = await asyncio.to_thread(recording.wait_for, 1.5, 15)
        assert level_dbfs(quiet[-RATE:]) < -70
        assert audio.stats.talking_viewers == 0

        # Toggled on: the page's microphone is played at the door.
        await page.click("#talk-toggle")
        await expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")
        await page.wait_for_function(
            "window.intercomAudio.levels().outgoing > -50", timeout=WAIT_MS
        )
        deadline = asyncio.get_running_loop().time() + 15
        while audio.stats.talking_viewers < 1:
            assert asyncio.get_running_loop().time() < deadline, "the page talking"
            await asyncio.sleep(0.05)
        with sound.recording() as recording:
            heard = await asyncio.to_thread(recording.wait_for, 2.0, 15)
        assert band_level_dbfs(heard[-RATE:], VIEWER_HZ, width=40) > -45

        # Held and released: it stops again.
        await page.click("#talk-toggle")
        await page.locator("#talk").dispatch_event("pointerdown")
        await expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")
        await page.locator("#talk").dispatch_event("pointerup")
        await expect(page.locator("#talk")).to_have_attribute("aria-pressed", "false")
        deadline = asyncio.get_running_loop().time() + 10
        while audio.stats.talking_viewers > 0:
            assert asyncio.get_running_loop().time() < deadline, "the page stopped talking"
            await asyncio.sleep(0.05)
    finally:
        await door.close()
        await context.close()
        await audio.close()
