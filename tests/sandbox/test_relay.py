"""The relay between a device and its viewers: session ids, routing, hangup, presence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.peers import (
    Grant,
    ScriptedDevice,
    ScriptedViewer,
    nothing_arrives,
    receive_json,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

CANDIDATE = {
    "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


@pytest_asyncio.fixture
async def grant(device: ScriptedDevice, control: SandboxControl) -> Grant:
    return await device.authorize(control)


@pytest_asyncio.fixture
async def device_socket(
    device: ScriptedDevice, grant: Grant
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    socket = await device.connect(grant.device_code, grant.access_token)
    yield socket
    await socket.close()


async def watch(info: SandboxInfo, grant: Grant) -> ScriptedViewer:
    return await ScriptedViewer.watch(info, grant.device_code)


async def test_offer_answer_and_ice_are_relayed_with_the_viewers_session(
    info: SandboxInfo,
    control: SandboxControl,
    grant: Grant,
    device_socket: aiohttp.ClientWebSocketResponse,
) -> None:
    viewer = await watch(info, grant)
    try:
        assert viewer.welcome_online
        await viewer.send({"type": "offer", "sdp": "v=0 offer"})
        offer = await receive_json(device_socket)
        assert offer == {"type": "offer", "sdp": "v=0 offer", "session": viewer.session}
        await viewer.send({"type": "ice", "candidate": CANDIDATE})
        await viewer.send({"type": "ice", "candidate": None})
        assert await receive_json(device_socket) == {
            "type": "ice",
            "candidate": CANDIDATE,
            "session": viewer.session,
        }
        assert (await receive_json(device_socket))["candidate"] is None

        answer = {"type": "answer", "sdp": "v=0 answer", "session": viewer.session}
        await device_socket.send_str(json.dumps(answer))
        assert await viewer.receive() == answer
        ice = {"type": "ice", "candidate": CANDIDATE, "session": viewer.session}
        await device_socket.send_str(json.dumps(ice))
        assert await viewer.receive() == ice
    finally:
        await viewer.close()

    relayed = control.messages(grant.device_code)
    directions = [(frame.direction, frame.json()["type"]) for frame in relayed]
    assert directions[:3] == [
        ("viewer_to_device", "offer"),
        ("viewer_to_device", "ice"),
        ("viewer_to_device", "ice"),
    ]
    assert ("device_to_viewer", "answer") in directions
    assert all(frame.session == viewer.session for frame in relayed)


async def test_two_viewers_each_get_only_their_own_answers(
    info: SandboxInfo, grant: Grant, device_socket: aiohttp.ClientWebSocketResponse
) -> None:
    first, second = await watch(info, grant), await watch(info, grant)
    try:
        assert first.session != second.session
        await first.send({"type": "offer", "sdp": "first"})
        await second.send({"type": "offer", "sdp": "second"})
        offers = [await receive_json(device_socket) for _ in range(2)]
        assert {(o["sdp"], o["session"]) for o in offers} == {
            ("first", first.session),
            ("second", second.session),
        }

        await device_socket.send_str(
            json.dumps({"type": "answer", "sdp": "for second", "session": second.session})
        )
        assert (await second.receive())["sdp"] == "for second"
        assert await nothing_arrives(first.socket)

        # Without a session, a device frame goes to every viewer of the device.
        await device_socket.send_str(json.dumps({"type": "ice", "candidate": None}))
        assert (await first.receive())["type"] == "ice"
        assert (await second.receive())["type"] == "ice"
    finally:
        await first.close()
        await second.close()


async def test_the_device_gets_a_hangup_when_a_viewer_leaves(
    info: SandboxInfo, grant: Grant, device_socket: aiohttp.ClientWebSocketResponse
) -> None:
    staying, leaving = await watch(info, grant), await watch(info, grant)
    try:
        await leaving.close()
        hangup = await receive_json(device_socket)
        assert hangup == {"type": "hangup", "session": leaving.session}
        assert await nothing_arrives(staying.socket)
    finally:
        await staying.close()
    assert (await receive_json(device_socket))["session"] == staying.session


async def test_viewers_are_told_when_the_device_comes_and_goes(
    device: ScriptedDevice, info: SandboxInfo, grant: Grant
) -> None:
    viewer = await watch(info, grant)
    try:
        assert not viewer.welcome_online
        await viewer.send({"type": "offer", "sdp": "too early"})
        assert await viewer.receive() == {"type": "error", "error": "the device is offline"}
        socket = await device.connect(grant.device_code, grant.access_token)
        assert await viewer.receive() == {"type": "presence", "online": True}
        await socket.close()
        assert await viewer.receive() == {"type": "presence", "online": False}
    finally:
        await viewer.close()


async def test_a_viewer_frame_that_is_not_a_json_object_is_answered_with_an_error(
    info: SandboxInfo, grant: Grant, device_socket: aiohttp.ClientWebSocketResponse
) -> None:
    viewer = await watch(info, grant)
    try:
        await viewer.socket.send_str("[]")
        assert (await viewer.receive())["type"] == "error"
        assert await nothing_arrives(device_socket)
    finally:
        await viewer.close()


async def test_the_viewer_socket_needs_a_signed_in_user_of_the_same_origin(
    http: aiohttp.ClientSession, info: SandboxInfo, grant: Grant
) -> None:
    url = f"{info.ws_base_url}/ws/view/{grant.device_code}/"
    with pytest.raises(aiohttp.WSServerHandshakeError) as anonymous:
        await http.ws_connect(url)
    assert anonymous.value.status == 403

    signed_in = await ScriptedViewer.sign_in(info)
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
            await signed_in.ws_connect(url, origin="http://attacker.example")
        assert foreign.value.status == 403
    finally:
        await signed_in.close()
