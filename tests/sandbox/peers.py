"""The two kinds of sandbox client the tests script: a device and a viewer, over aiohttp.

A :class:`ScriptedDevice` speaks protocol.md from the device side (device flow,
refresh, the signaling socket); a :class:`ScriptedViewer` signs in as the demo
user through the login form and opens the viewer socket, as the monitor page does.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
RECEIVE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    content_type: str
    headers: dict[str, str]

    @property
    def error(self) -> str | None:
        error = self.body.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True)
class Flow:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Grant:
    device_code: str
    access_token: str
    refresh_token: str


async def _answer(response: aiohttp.ClientResponse) -> Answer:
    text = await response.text()
    try:
        body = json.loads(text)
    except ValueError:
        body = {"text": text}
    return Answer(
        status=response.status,
        body=body if isinstance(body, dict) else {"json": body},
        content_type=response.content_type,
        headers=dict(response.headers),
    )


class ScriptedDevice:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        info: SandboxInfo,
        *,
        client_secret: str | None = None,
        device_type: str = "camera",
        device_os: str = "Linux-6.1-aarch64",
    ) -> None:
        self.http = http
        self.info = info
        self.client_secret = client_secret if client_secret is not None else info.client_secret
        self.device_type = device_type
        self.device_os = device_os

    def _client(self) -> dict[str, str]:
        form = {"client_id": self.info.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        async with self.http.post(f"{self.info.http_base_url}{path}", data=form) as response:
            return await _answer(response)

    async def request_authorization(self, **fields: str) -> Answer:
        form = {**self._client(), "device_type": self.device_type, "device_os": self.device_os}
        return await self.post("/oauth/device-authorization/", {**form, **fields})

    async def start_flow(self) -> Flow:
        answer = await self.request_authorization()
        assert answer.status == 200, answer
        body = answer.body
        return Flow(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body["verification_uri"],
            verification_uri_complete=body["verification_uri_complete"],
            expires_in=body["expires_in"],
            interval=body["interval"],
        )

    async def poll(self, device_code: str) -> Answer:
        form = {**self._client(), "grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
        return await self.post("/oauth/token/", form)

    async def poll_until_tokens(self, flow: Flow, within: float = 15.0) -> Grant:
        async with asyncio.timeout(within):
            while True:
                answer = await self.poll(flow.device_code)
                if answer.status == 200:
                    return Grant(
                        flow.device_code, answer.body["access_token"], answer.body["refresh_token"]
                    )
                assert answer.error == "authorization_pending", answer
                await asyncio.sleep(flow.interval)

    async def refresh(self, refresh_token: str) -> Answer:
        form = {**self._client(), "grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self.post("/oauth/token/", form)

    async def authorize(self, control: SandboxControl) -> Grant:
        """The whole device flow, approved through the control API."""
        flow = await self.start_flow()
        control.approve(user_code=flow.user_code)
        return await self.poll_until_tokens(flow)

    async def connect(
        self, device_code: str, access_token: str | None
    ) -> aiohttp.ClientWebSocketResponse:
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        url = f"{self.info.ws_base_url}/ws/live_stream/{device_code}/"
        return await self.http.ws_connect(
            url, headers=headers, timeout=aiohttp.ClientWSTimeout(ws_close=5)
        )


class ScriptedViewer:
    """A signed-in viewer of one device; close() leaves (the device then gets a hangup)."""

    def __init__(self, http: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse):
        self.http = http
        self.socket = socket
        self.session = ""
        self.welcome_online = False

    @classmethod
    async def sign_in(cls, info: SandboxInfo) -> aiohttp.ClientSession:
        # unsafe=True: the default cookie jar drops cookies of IP-address hosts.
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        login = f"{info.http_base_url}/accounts/login/"
        async with http.get(login) as response:
            page = await response.text()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, "no CSRF token on the login page"
        form = {
            "csrfmiddlewaretoken": match.group(1),
            "username": info.username,
            "password": info.password,
            "next": "/",
        }
        async with http.post(login, data=form, headers={"Referer": login}) as response:
            assert response.status == 200 and response.url.path == "/", response.url
        return http

    @classmethod
    async def watch(cls, info: SandboxInfo, device_code: str) -> ScriptedViewer:
        http = await cls.sign_in(info)
        try:
            socket = await http.ws_connect(f"{info.ws_base_url}/ws/view/{device_code}/")
        except BaseException:
            await http.close()
            raise
        viewer = cls(http, socket)
        welcome = await viewer.receive()
        assert welcome["type"] == "welcome", welcome
        viewer.session = welcome["session"]
        viewer.welcome_online = welcome["online"]
        return viewer

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_str(json.dumps(message))

    async def receive(self, within: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        return await receive_json(self.socket, within)

    async def close(self) -> None:
        await self.socket.close()
        await self.http.close()


async def receive_json(
    socket: aiohttp.ClientWebSocketResponse, within: float = RECEIVE_TIMEOUT
) -> dict[str, Any]:
    message = await socket.receive(timeout=within)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    data = json.loads(message.data)
    assert isinstance(data, dict)
    return data


async def nothing_arrives(socket: aiohttp.ClientWebSocketResponse, within: float = 0.5) -> bool:
    try:
        message = await socket.receive(timeout=within)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected frame: {message}")
