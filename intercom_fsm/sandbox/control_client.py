"""A typed client of the sandbox's control API (see :mod:`.backend.control_views`).

Plain ``urllib``, no Django: tests and the demo use it from their own process.
The calls are blocking and quick (loopback); from async code, run them with
``asyncio.to_thread`` when the event loop must keep serving meanwhile.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from intercom_fsm.redact import one_line_text

FaultKind = Literal["status", "hang", "html", "slow_down"]
FaultEndpoint = Literal["token", "device-authorization"]


class ControlError(RuntimeError):
    """The control API refused a request (``status`` is its HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"control API answered {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class DeviceStatus:
    device_code: str
    user_code: str
    status: str  # pending, approved, denied, expired or connected
    device_type: str
    device_os: str
    connected: bool
    viewers: int
    tokens_issued: bool
    created: str
    expires: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceStatus:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RelayedFrame:
    seq: int
    at: float
    device_code: str
    direction: str  # viewer_to_device, device_to_viewer or control_to_device
    session: str | None
    text: str | None
    binary_base64: str | None
    delivered: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RelayedFrame:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def json(self) -> Any:
        """The frame's text parsed as JSON (raises ValueError when it is not JSON)."""
        if self.text is None:
            raise ValueError("a binary frame")
        return json.loads(self.text)


class SandboxControl:
    """The control API of one running sandbox (started with ``--test-controls``)."""

    def __init__(self, http_base_url: str, timeout: float = 10.0) -> None:
        self._base = f"{http_base_url.rstrip('/')}/sandbox/control/"
        self._timeout = timeout

    def devices(self) -> list[DeviceStatus]:
        return [DeviceStatus.from_json(row) for row in self._get("devices/")["devices"]]

    def device(
        self, *, device_code: str | None = None, user_code: str | None = None
    ) -> DeviceStatus:
        for row in self.devices():
            if device_code in (None, row.device_code) and user_code in (None, row.user_code):
                return row
        raise ControlError(404, "no such device")

    def approve(self, *, device_code: str | None = None, user_code: str | None = None) -> str:
        """Approve as the demo user; returns the device code."""
        answer = self._post("devices/approve/", _selector(device_code, user_code))
        return str(answer["device_code"])

    def deny(self, *, device_code: str | None = None, user_code: str | None = None) -> str:
        answer = self._post("devices/deny/", _selector(device_code, user_code))
        return str(answer["device_code"])

    def expire_access_tokens(self, device_code: str) -> int:
        return int(
            self._post("devices/expire-access-tokens/", {"device_code": device_code})["expired"]
        )

    def revoke_refresh_token(self, device_code: str) -> int:
        return int(
            self._post("devices/revoke-refresh-token/", {"device_code": device_code})["revoked"]
        )

    def close_device_socket(self, device_code: str, code: int = 1000) -> bool:
        """Close the device's socket with ``code``; False when it was not connected."""
        body = {"device_code": device_code, "code": code}
        return bool(self._post("devices/close-socket/", body)["closed"])

    def send_to_device(
        self, device_code: str, *, text: str | None = None, binary: bytes | None = None
    ) -> bool:
        """Send one raw frame to the device's socket; False when it was not connected."""
        body: dict[str, Any] = {"device_code": device_code}
        if text is not None:
            body["text"] = text
        if binary is not None:
            body["binary_base64"] = base64.b64encode(binary).decode()
        return bool(self._post("devices/send/", body)["sent"])

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        status: int | None = None,
        seconds: float | None = None,
        endpoint: FaultEndpoint = "token",
    ) -> None:
        body: dict[str, Any] = {"kind": kind, "count": count, "endpoint": endpoint}
        if status is not None:
            body["status"] = status
        if seconds is not None:
            body["seconds"] = seconds
        self._post("faults/", body)

    def clear_faults(self) -> None:
        self._post("faults/clear/", {})

    def messages(self, device_code: str | None = None, after: int = 0) -> list[RelayedFrame]:
        query = {"after": str(after), **({"device_code": device_code} if device_code else {})}
        answer = self._get(f"messages/?{urllib.parse.urlencode(query)}")
        return [RelayedFrame.from_json(frame) for frame in answer["messages"]]

    def clear_messages(self) -> None:
        self._post("messages/clear/", {})

    def _get(self, path: str) -> dict[str, Any]:
        return self._call(urllib.request.Request(self._base + path, method="GET"))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self._base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ControlError(error.code, _error_text(error)) from None
        if not isinstance(answer, dict):
            raise ControlError(200, "the answer is not a JSON object")
        return answer


def _selector(device_code: str | None, user_code: str | None) -> dict[str, str]:
    if (device_code is None) == (user_code is None):
        raise ValueError("name the device with exactly one of device_code or user_code")
    return {"device_code": device_code} if device_code else {"user_code": str(user_code)}


def _error_text(error: urllib.error.HTTPError) -> str:
    """The control API's own words for a refusal, as one line."""
    try:
        body = json.loads(error.read())
    except ValueError:
        return one_line_text(error.reason) if isinstance(error.reason, str) else "error"
    return one_line_text(str(body.get("error", body)) if isinstance(body, dict) else str(body))
