"""The monitor page's own JSON API, as the page's script calls it (session and CSRF token)."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.peers import ScriptedDevice, ScriptedViewer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def decide(
    http: aiohttp.ClientSession, info: SandboxInfo, user_code: str, decision: str
) -> tuple[int, dict[str, str]]:
    async with http.get(info.viewer_url) as page:
        assert page.status == 200
    token = http.cookie_jar.filter_cookies(URL(info.viewer_url))["csrftoken"].value
    async with http.post(
        f"{info.http_base_url}/api/devices/decide/",
        json={"user_code": user_code, "decision": decision},
        headers={"X-CSRFToken": token, "Referer": info.viewer_url},
    ) as response:
        return response.status, await response.json()


async def test_a_signed_in_person_approves_by_user_code_typed_loosely(
    device: ScriptedDevice, info: SandboxInfo
) -> None:
    flow = await device.start_flow()
    http = await ScriptedViewer.sign_in(info)
    try:
        typed = f" {flow.user_code[:4].lower()}-{flow.user_code[4:].lower()} "
        assert await decide(http, info, typed, "approve") == (
            200,
            {"user_code": flow.user_code, "status": "approved"},
        )
        status, body = await decide(http, info, flow.user_code, "approve")
        assert status == 409 and "already been used" in body["error"]
        status, body = await decide(http, info, "NOSUCHCODE", "deny")
        assert status == 409 and "Incorrect" in body["error"]
        async with http.get(f"{info.http_base_url}/api/devices/") as response:
            rows = (await response.json())["devices"]
        (row,) = [row for row in rows if row["user_code"] == flow.user_code]
        assert row["status"] == "approved"
    finally:
        await http.close()
    assert (await device.poll(flow.device_code)).status == 200


async def test_the_api_needs_a_signed_in_person(
    http: aiohttp.ClientSession, info: SandboxInfo
) -> None:
    async with http.get(f"{info.http_base_url}/api/devices/") as response:
        assert response.status == 401
    async with http.get(info.viewer_url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"].startswith("/accounts/login/")
