"""protocol.md section 2, the device's side: who may open the socket, and what the sandbox sends."""

from __future__ import annotations

import aiohttp
import pytest
import pytest_asyncio

from intercom_fsm.sandbox.control_client import SandboxControl
from tests.sandbox.peers import Grant, ScriptedDevice

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def refused_status(device: ScriptedDevice, device_code: str, token: str | None) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        await device.connect(device_code, token)
    return refusal.value.status


@pytest_asyncio.fixture
async def grant(device: ScriptedDevice, control: SandboxControl) -> Grant:
    return await device.authorize(control)


async def test_the_device_connects_with_its_own_token(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    socket = await device.connect(grant.device_code, grant.access_token)
    try:
        assert control.device(device_code=grant.device_code).status == "connected"
    finally:
        await socket.close()


async def test_the_handshake_is_refused_without_a_valid_token(
    device: ScriptedDevice, grant: Grant
) -> None:
    assert await refused_status(device, grant.device_code, None) == 403
    assert await refused_status(device, grant.device_code, "not-a-token") == 403
    # A refresh token is not an access token.
    assert await refused_status(device, grant.device_code, grant.refresh_token) == 403


async def test_the_handshake_is_refused_with_another_devices_token(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    other = await device.authorize(control)
    assert await refused_status(device, grant.device_code, other.access_token) == 403
    socket = await device.connect(other.device_code, other.access_token)
    await socket.close()


async def test_the_handshake_is_refused_once_the_token_expired(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    assert control.expire_access_tokens(grant.device_code) == 1
    assert await refused_status(device, grant.device_code, grant.access_token) == 403
    refreshed = await device.refresh(grant.refresh_token)
    socket = await device.connect(grant.device_code, refreshed.body["access_token"])
    await socket.close()


async def test_the_handshake_is_refused_once_the_grant_is_revoked(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    control.revoke_refresh_token(grant.device_code)
    assert await refused_status(device, grant.device_code, grant.access_token) == 403


async def test_a_refreshed_token_still_names_the_same_device(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    token = grant.refresh_token
    for _ in range(2):
        answer = await device.refresh(token)
        assert answer.status == 200, answer.body
        token = answer.body["refresh_token"]
    socket = await device.connect(grant.device_code, answer.body["access_token"])
    assert not socket.closed
    await socket.close()


@pytest.mark.parametrize("code", [4401, 4403, 1011, 1000])
async def test_the_control_api_closes_the_socket_with_a_chosen_code(
    device: ScriptedDevice, control: SandboxControl, grant: Grant, code: int
) -> None:
    socket = await device.connect(grant.device_code, grant.access_token)
    assert control.close_device_socket(grant.device_code, code)
    message = await socket.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert message.data == code
    await socket.close()


async def test_the_control_api_sends_raw_frames(
    device: ScriptedDevice, control: SandboxControl, grant: Grant
) -> None:
    socket = await device.connect(grant.device_code, grant.access_token)
    try:
        for frame in ["not json", "[1, 2]", '{"type": "offer"}', '{"type": "teleport"}']:
            assert control.send_to_device(grant.device_code, text=frame)
            message = await socket.receive(timeout=5)
            assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, frame)
        assert control.send_to_device(grant.device_code, binary=b"\x00\xff")
        message = await socket.receive(timeout=5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.BINARY, b"\x00\xff")
    finally:
        await socket.close()
    sent = [f for f in control.messages(grant.device_code) if f.direction == "control_to_device"]
    assert [f.text for f in sent][:2] == ["not json", "[1, 2]"]
    assert sent[-1].binary_base64 == "AP8="


async def test_a_newer_socket_of_the_same_device_replaces_the_older(
    device: ScriptedDevice, grant: Grant
) -> None:
    older = await device.connect(grant.device_code, grant.access_token)
    newer = await device.connect(grant.device_code, grant.access_token)
    message = await older.receive(timeout=5)
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 4000)
    assert not newer.closed
    await older.close()
    await newer.close()
