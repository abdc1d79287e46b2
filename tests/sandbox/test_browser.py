"""The monitor page in Debian's chromium: sign in, approve a device, watch its stream.

The device is an aiortc answerer with a synthetic camera, in this process; the
page is the offerer and trickles its ICE candidates through the viewer socket.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import pytest_asyncio

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo
from tests.requirements import missing
from tests.sandbox.media import HEIGHT, WIDTH, AnsweringDevice, loopback_only
from tests.sandbox.peers import ScriptedDevice

pytestmark = [pytest.mark.browser, pytest.mark.asyncio, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    # Without it chromium offers *.local names instead of its loopback address.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 30_000


def _browser_missing(reason: str) -> NoReturn:
    missing("the browser test", reason)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _browser_missing("the playwright package is not installed")
    if shutil.which(CHROMIUM) is None:
        _browser_missing(f"{CHROMIUM} is missing (Debian package 'chromium')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def frame_count(page: Any) -> int:
    return int(await page.locator("#frames").text_content() or "0")


async def wait_for_frames(page: Any, at_least: int) -> None:
    await page.wait_for_function(
        f"Number(document.getElementById('frames').textContent) >= {at_least}", timeout=WAIT_MS
    )


async def test_a_person_approves_a_device_and_watches_it_in_two_tabs(
    browser: Any,
    device: ScriptedDevice,
    control: SandboxControl,
    info: SandboxInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.async_api import expect

    loopback_only(monkeypatch)
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    page = await context.new_page()
    flow = await device.start_flow()

    # verification_uri_complete: sign in first, then the code is already filled in.
    await page.goto(flow.verification_uri_complete)
    await page.fill("#id_username", info.username)
    await page.fill("#id_password", info.password)
    await page.click("#sign-in")
    await expect(page.locator("#user-code")).to_have_value(flow.user_code)
    await page.click("#approve")
    await expect(page.locator("#approve-result")).to_contain_text("approved")

    grant = await device.poll_until_tokens(flow)
    answering = AnsweringDevice(await device.connect(grant.device_code, grant.access_token))
    try:
        entry = page.locator(f'button[data-device-code="{grant.device_code}"]')
        await expect(entry).to_have_attribute("data-status", "connected", timeout=WAIT_MS)
        await entry.click()
        await wait_for_frames(page, 15)
        size = await page.evaluate("[video.videoWidth, video.videoHeight]")
        assert size == [WIDTH, HEIGHT]
        await expect(page.locator("#resolution")).to_have_text(f"{WIDTH}×{HEIGHT}")
        await page.wait_for_function(
            "parseFloat(document.getElementById('fps').textContent) > 2", timeout=WAIT_MS
        )
        await expect(page.locator("#status")).to_have_text("Streaming.")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "sandbox-monitor.png"), full_page=True)

        # A second tab watches the same device at the same time.
        second = await context.new_page()
        await second.goto(f"{info.viewer_url}?watch={grant.device_code}")
        await wait_for_frames(second, 10)
        seen = await frame_count(page)
        await wait_for_frames(page, seen + 10)
        assert len(answering.peers) == 2
    finally:
        await answering.close()

    # The device drops off: the page says so, and offers again when it is back.
    await expect(page.locator("#status")).to_contain_text("offline", timeout=WAIT_MS)
    back = AnsweringDevice(await device.connect(grant.device_code, grant.access_token))
    try:
        seen = await frame_count(page)
        await wait_for_frames(page, seen + 10)
        await expect(page.locator("#status")).to_have_text("Streaming.")
    finally:
        await back.close()
        await context.close()
