"""Lifetimes that run out for real: a short-lived sandbox (2 s device codes, 2 s access tokens)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.sandbox.peers import ScriptedDevice

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

LIFETIME = 2


@pytest.fixture(scope="module")
def short_lived() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_expires_in=LIFETIME, access_token_lifetime=LIFETIME) as sandbox:
        yield sandbox


async def test_an_expired_device_code_gets_expired_token(
    http: aiohttp.ClientSession, short_lived: SandboxProcess
) -> None:
    device = ScriptedDevice(http, short_lived.info)
    flow = await device.start_flow()
    assert flow.expires_in == LIFETIME
    assert (await device.poll(flow.device_code)).error == "authorization_pending"
    await asyncio.sleep(LIFETIME + 0.2)
    answer = await device.poll(flow.device_code)
    assert (answer.status, answer.error) == (400, "expired_token")
    assert short_lived.control.device(device_code=flow.device_code).status == "expired"


async def test_an_access_token_past_its_lifetime_is_refused_by_the_socket(
    http: aiohttp.ClientSession, short_lived: SandboxProcess
) -> None:
    device = ScriptedDevice(http, short_lived.info)
    grant = await device.authorize(short_lived.control)
    await asyncio.sleep(LIFETIME + 0.2)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        await device.connect(grant.device_code, grant.access_token)
    assert refusal.value.status == 403
    refreshed = await device.refresh(grant.refresh_token)
    assert refreshed.body["expires_in"] == LIFETIME
    socket = await device.connect(grant.device_code, refreshed.body["access_token"])
    await socket.close()
