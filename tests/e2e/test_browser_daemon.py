"""A person approves the daemon in the sandbox's page and watches its stream in
Debian's chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess
from tests.sandbox.test_browser import ARTIFACTS, WAIT_MS, browser, wait_for_frames

__all__ = ["browser"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio, pytest.mark.timeout(120)]


async def test_watch_the_daemons_stream_in_chromium(
    browser: Any, sandbox: SandboxProcess, daemon: DaemonProcess
) -> None:
    from playwright.async_api import expect

    daemon.wait_for_state("AwaitingApproval")
    link: list[str] = []

    def link_shown(process: DaemonProcess) -> bool:
        link[:] = re.findall(r"(http://\S+user_code=\S+)", process.text())
        return bool(link)

    daemon.wait_until(link_shown, 10, "the verification link in the daemon's output")
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(link[0])
        await page.fill("#id_username", sandbox.info.username)
        await page.fill("#id_password", sandbox.info.password)
        await page.click("#sign-in")
        await page.click("#approve")
        await expect(page.locator("#approve-result")).to_contain_text("approved")
        daemon.wait_for_state("Negotiating")

        device = page.locator("button[data-device-code]").first
        await expect(device).to_have_attribute("data-status", "connected", timeout=WAIT_MS)
        await device.click()
        await wait_for_frames(page, 15)
        size = await page.evaluate("[video.videoWidth, video.videoHeight]")
        assert size == [320, 240]
        await expect(page.locator("#status")).to_have_text("Streaming.")
        daemon.wait_for_state("Streaming")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "daemon-in-chromium.png"), full_page=True)

        # The device's socket drops: the page keeps its call (protocol.md 3.3)
        # and does not offer again; the call is reached again after the reconnect.
        [connected] = [d.device_code for d in sandbox.control.devices() if d.connected]
        frames = int(await page.inner_text("#frames"))
        streaming = daemon.wait_for_state("Streaming")
        sandbox.control.close_device_socket(connected, code=1011)
        daemon.wait_for_state("Streaming", after=streaming)
        await wait_for_frames(page, frames + 20)
        moves = [
            (r["from"], r["to"], r["event"])
            for r in daemon.records()
            if r.get("session") is not None and "from" in r
        ]
        assert ("Connected", "Held", "SignalingLost") in moves
        assert ("Held", "Connected", "SignalingRestored") in moves
        assert not any(event == "Replaced" for _from, _to, event in moves)
        await expect(page.locator("#status")).to_have_text("Streaming.")
    finally:
        await context.close()
