"""The two WebSockets: a device's signaling socket and a viewer's (protocol.md section 2).

``/ws/live_stream/<device_code>/`` takes a device that sends
``Authorization: Bearer <access token>``; the handshake is refused (403, by
closing before accepting) when the token is missing, unknown, revoked, expired
or was granted to another device code. The newest socket of a device wins; an
older one is closed with 4000.

``/ws/view/<device_code>/`` takes a signed-in viewer (Django session). Each
viewer socket gets a session id. Its frames go to the device with
``"session": <id>`` added; the device's frames that carry a ``session`` go to
that viewer only, those without go to every viewer of the device. When a viewer
leaves, the device gets ``{"type": "hangup", "session": <id>}``. Viewers are
told ``{"type": "presence", "online": bool}`` when the device comes and goes.

Device frames that are not JSON objects are not routed anywhere (they are only
logged); frames to the device are passed on exactly as sent, and the control
API can send any raw frame, so the client's handling of bad frames can be tested.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from intercom_fsm.sandbox.backend import grants
from intercom_fsm.sandbox.backend.live import LIVE

logger = logging.getLogger(__name__)

REPLACED_CLOSE_CODE = 4000


def presence_group(device_code: str) -> str:
    return f"presence.{device_code}"


def bearer_token(scope: dict[str, Any]) -> str | None:
    header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
    scheme, _, value = header.partition(" ")
    token: str = value.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class DeviceConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    device_code: str | None = None

    async def connect(self) -> None:
        wanted: str = self.scope["url_route"]["kwargs"]["device_code"]
        token = bearer_token(self.scope)
        if token is None:
            owner, reason = None, "no bearer token"
        else:
            owner, reason = await database_sync_to_async(grants.device_code_for_bearer)(token)
            if owner is not None and owner != wanted:
                reason = "token granted to another device"
        if owner != wanted:
            logger.info("device socket refused: %s", reason)
            await self.close()
            return
        await self.accept()
        self.device_code = wanted
        previous = LIVE.attach_device(wanted, self.channel_name)
        if previous is not None:
            await self.channel_layer.send(
                previous, {"type": "device.close", "code": REPLACED_CLOSE_CODE}
            )
        logger.info("device online: %s…", wanted[:6])
        await self._announce_presence(online=True)

    async def disconnect(self, code: int) -> None:
        if self.device_code is None:
            return
        if LIVE.detach_device(self.device_code, self.channel_name):
            logger.info("device offline: %s… (close code %s)", self.device_code[:6], code)
            await self._announce_presence(online=False)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.device_code is None:
            return
        message = _json_object(text_data)
        session = message.get("session") if message is not None else None
        if message is None:
            targets: list[str] = []
            logger.warning("device sent a frame that is not a JSON object; not relayed")
        elif isinstance(session, str):
            channel = LIVE.viewer_channel(self.device_code, session)
            targets = [channel] if channel is not None else []
        else:
            targets = LIVE.viewer_channels(self.device_code)
        for channel in targets:
            await self.channel_layer.send(channel, {"type": "viewer.frame", "text": text_data})
        LIVE.record(
            self.device_code,
            "device_to_viewer",
            session=session if isinstance(session, str) else None,
            text=text_data,
            binary=bytes_data,
            delivered=bool(targets),
        )

    async def device_frame(self, event: dict[str, Any]) -> None:
        """A frame for the device, from a viewer or the control API, sent as is."""
        if "bytes" in event:
            await self.send(bytes_data=event["bytes"])
        else:
            await self.send(text_data=event["text"])

    async def device_close(self, event: dict[str, Any]) -> None:
        await self.close(code=event["code"])

    async def _announce_presence(self, *, online: bool) -> None:
        assert self.device_code is not None
        await self.channel_layer.group_send(
            presence_group(self.device_code), {"type": "viewer.presence", "online": online}
        )


def _same_origin(scope: dict[str, Any]) -> bool:
    """A browser's socket must come from a page of this server (cross-site WebSocket hijacking)."""
    headers: dict[bytes, bytes] = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = headers.get(b"host", b"").decode("latin-1")
    return urlsplit(origin.decode("latin-1")).netloc == host


class ViewerConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    device_code: str | None = None
    session: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not _same_origin(self.scope):
            logger.info("viewer socket refused: not signed in or foreign origin")
            await self.close()
            return
        await self.accept()
        self.device_code = self.scope["url_route"]["kwargs"]["device_code"]
        self.session = LIVE.add_viewer(self.device_code, self.channel_name)
        await self.channel_layer.group_add(presence_group(self.device_code), self.channel_name)
        online = LIVE.device_channel(self.device_code) is not None
        await self._send_json({"type": "welcome", "session": self.session, "online": online})

    async def disconnect(self, code: int) -> None:
        if self.device_code is None or self.session is None:
            return
        LIVE.remove_viewer(self.device_code, self.session)
        await self.channel_layer.group_discard(presence_group(self.device_code), self.channel_name)
        await self._to_device({"type": "hangup", "session": self.session})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.device_code is None or self.session is None:
            return
        message = _json_object(text_data)
        if message is None:
            await self._send_json({"type": "error", "error": "send one JSON object per frame"})
            return
        message["session"] = self.session
        if not await self._to_device(message):
            await self._send_json({"type": "error", "error": "the device is offline"})

    async def viewer_frame(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def viewer_presence(self, event: dict[str, Any]) -> None:
        await self._send_json({"type": "presence", "online": event["online"]})

    async def _to_device(self, message: dict[str, Any]) -> bool:
        assert self.device_code is not None
        text = json.dumps(message)
        channel: str | None = LIVE.device_channel(self.device_code)
        if channel is not None:
            await self.channel_layer.send(channel, {"type": "device.frame", "text": text})
        LIVE.record(
            self.device_code,
            "viewer_to_device",
            session=self.session,
            text=text,
            delivered=channel is not None,
        )
        return channel is not None

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message))
