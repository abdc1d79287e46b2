"""protocol.md section 1 against the real sandbox: device flow, polling answers, refresh, faults."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo
from tests.sandbox.conftest import DEVICE_EXPIRES_IN, DEVICE_INTERVAL
from tests.sandbox.peers import ScriptedDevice

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_device_flow_from_pending_to_tokens_records_the_device(
    device: ScriptedDevice, control: SandboxControl, info: SandboxInfo
) -> None:
    flow = await device.start_flow()
    assert flow.verification_uri == info.verification_uri
    assert flow.verification_uri_complete == f"{info.verification_uri}?user_code={flow.user_code}"
    assert (flow.interval, flow.expires_in) == (DEVICE_INTERVAL, DEVICE_EXPIRES_IN)

    pending = await device.poll(flow.device_code)
    assert (pending.status, pending.error) == (400, "authorization_pending")
    row = control.device(device_code=flow.device_code)
    assert (row.status, row.device_type, row.device_os) == ("pending", "camera", device.device_os)

    control.approve(user_code=flow.user_code)
    assert control.device(device_code=flow.device_code).status == "approved"
    await asyncio.sleep(flow.interval)
    tokens = await device.poll(flow.device_code)
    assert tokens.status == 200, tokens
    assert tokens.body["token_type"] == "Bearer"
    assert tokens.body["expires_in"] > 0
    assert tokens.body["access_token"] and tokens.body["refresh_token"]
    assert control.device(device_code=flow.device_code).tokens_issued

    await asyncio.sleep(flow.interval)
    again = await device.poll(flow.device_code)
    assert (again.status, again.error) == (400, "invalid_grant"), "a device code is used once"


async def test_a_poll_sooner_than_the_interval_gets_slow_down(device: ScriptedDevice) -> None:
    flow = await device.start_flow()
    assert (await device.poll(flow.device_code)).error == "authorization_pending"
    too_soon = await device.poll(flow.device_code)
    assert (too_soon.status, too_soon.error) == (400, "slow_down")
    # RFC 8628 §3.5: the interval grows by 5 s, so the old interval is now too soon too.
    await asyncio.sleep(flow.interval + 0.2)
    assert (await device.poll(flow.device_code)).error == "slow_down"


async def test_a_denied_device_gets_access_denied(
    device: ScriptedDevice, control: SandboxControl
) -> None:
    flow = await device.start_flow()
    control.deny(device_code=flow.device_code)
    answer = await device.poll(flow.device_code)
    assert (answer.status, answer.error) == (400, "access_denied")
    assert control.device(device_code=flow.device_code).status == "denied"


async def test_device_type_and_os_are_required(device: ScriptedDevice) -> None:
    answer = await device.post(
        "/oauth/device-authorization/",
        {"client_id": device.info.client_id, "client_secret": device.client_secret or ""},
    )
    assert (answer.status, answer.error) == (400, "invalid_request")


async def test_a_wrong_client_secret_is_refused_on_both_endpoints(
    http: aiohttp.ClientSession, info: SandboxInfo
) -> None:
    honest, impostor = (
        ScriptedDevice(http, info),
        ScriptedDevice(http, info, client_secret="not-the-secret"),
    )
    assert (await impostor.request_authorization()).error == "invalid_client"
    flow = await honest.start_flow()
    answer = await impostor.poll(flow.device_code)
    assert (answer.status, answer.error) == (401, "invalid_client")


async def test_refresh_rotates_the_refresh_token(
    device: ScriptedDevice, control: SandboxControl
) -> None:
    grant = await device.authorize(control)
    first = await device.refresh(grant.refresh_token)
    assert first.status == 200, first
    assert first.body["refresh_token"] != grant.refresh_token
    assert first.body["access_token"] != grant.access_token

    replayed = await device.refresh(grant.refresh_token)
    assert (replayed.status, replayed.error) == (400, "invalid_grant")
    assert (await device.refresh(first.body["refresh_token"])).status == 200


async def test_a_revoked_refresh_token_gets_invalid_grant(
    device: ScriptedDevice, control: SandboxControl
) -> None:
    grant = await device.authorize(control)
    assert control.revoke_refresh_token(grant.device_code) == 1
    answer = await device.refresh(grant.refresh_token)
    assert (answer.status, answer.error) == (400, "invalid_grant")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_injected_status_answers_the_next_request_only(
    device: ScriptedDevice, control: SandboxControl, status: int
) -> None:
    flow = await device.start_flow()
    control.inject_fault("status", status=status)
    failed = await device.poll(flow.device_code)
    assert failed.status == status
    if status == 429:
        assert failed.headers["Retry-After"] == "1"
    await asyncio.sleep(flow.interval)
    assert (await device.poll(flow.device_code)).error == "authorization_pending"


async def test_an_injected_html_page_replaces_the_json(
    device: ScriptedDevice, control: SandboxControl
) -> None:
    control.inject_fault("html", endpoint="device-authorization")
    answer = await device.request_authorization()
    assert (answer.status, answer.content_type) == (200, "text/html")
    assert "<html>" in answer.body["text"]


async def test_an_injected_hang_holds_the_request_then_answers(
    device: ScriptedDevice, control: SandboxControl, info: SandboxInfo
) -> None:
    flow = await device.start_flow()
    control.inject_fault("hang", seconds=1.5)
    started = time.monotonic()
    held, other = await asyncio.gather(
        device.poll(flow.device_code),
        # A hang holds only its own request: the rest of the sandbox keeps answering.
        asyncio.to_thread(control.devices),
    )
    assert time.monotonic() - started >= 1.5
    assert held.error == "authorization_pending"
    assert other


async def test_faults_are_validated(control: SandboxControl) -> None:
    from intercom_fsm.sandbox.control_client import ControlError

    with pytest.raises(ControlError) as refused:
        control.inject_fault("hang", seconds=-1)
    assert refused.value.status == 400
