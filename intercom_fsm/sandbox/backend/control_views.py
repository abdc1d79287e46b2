"""The control API, for end-to-end tests of the client: JSON over HTTP under ``/sandbox/control/``.

Served only when the sandbox runs with ``--test-controls`` (404 otherwise).
Requests and answers are JSON objects; errors are ``{"error": "..."}`` with
status 400 (bad request), 404 (no such device) or 409 (not possible now).
A device is chosen with ``"device_code"`` or ``"user_code"`` in the body.

==========================================  ==========================================
``GET  devices/``                           ``{"devices": [row, ...]}``; a row has
                                            device_code, user_code, status (pending,
                                            approved, denied, expired, connected),
                                            device_type, device_os, connected, viewers,
                                            tokens_issued, created, expires
``POST devices/approve/``                   approve as the demo user → ``{"device_code"}``
``POST devices/deny/``                      deny as the demo user → ``{"device_code"}``
``POST devices/expire-access-tokens/``      set its access tokens' expiry in the past
                                            → ``{"expired": n}``
``POST devices/revoke-refresh-token/``      revoke its refresh token (and access token)
                                            → ``{"revoked": n}``
``POST devices/close-socket/``              ``{"code": 4401}``: close its socket with
                                            that code → ``{"closed": bool}``
``POST devices/send/``                      ``{"text": "..."}`` or ``{"binary_base64":
                                            "..."}``: one raw frame → ``{"sent": bool}``
                                            (daphne never sends an empty frame)
``POST faults/``                            ``{"endpoint": "token" (default) or
                                            "device-authorization", "kind": "status",
                                            "status": 503 | "hang", "seconds": 5 |
                                            "html", "count": 1}`` → ``{"pending": ...}``
``POST faults/clear/``                      drop every queued fault
``GET  messages/``                          ``?device_code=...&after=seq``: relayed frames
                                            → ``{"messages": [frame, ...]}`` (see
                                            :class:`~.live.RelayedFrame`)
``POST messages/clear/``                    forget the relayed frames
==========================================  ==========================================
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from intercom_fsm.sandbox.backend import grants
from intercom_fsm.sandbox.backend.faults import FAULTS, Fault, FaultSpecError
from intercom_fsm.sandbox.backend.live import LIVE

ControlView = Callable[[HttpRequest], Awaitable[HttpResponse]]
# Close codes an endpoint may put on the wire (RFC 6455 §7.4, IANA registry).
SENDABLE_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)])


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def control_endpoint(method: str) -> Callable[[ControlView], ControlView]:
    """Guard a control view: only with --test-controls, only ``method``, errors as JSON."""

    def decorate(view: ControlView) -> ControlView:
        async def guarded(request: HttpRequest) -> HttpResponse:
            if not settings.SANDBOX_TEST_CONTROLS:
                raise Http404("the control API is off (start the sandbox with --test-controls)")
            if request.method != method:
                return JsonResponse({"error": f"use {method}"}, status=405)
            try:
                return await view(request)
            except ControlError as error:
                return JsonResponse({"error": str(error)}, status=error.status)

        exempt: ControlView = csrf_exempt(guarded)
        return exempt

    return decorate


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as error:
        raise ControlError(400, f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _grant_of(body: dict[str, Any]) -> Any:
    device_code, user_code = body.get("device_code"), body.get("user_code")
    if not isinstance(device_code, str | None) or not isinstance(user_code, str | None):
        raise ControlError(400, "device_code and user_code must be strings")
    if not device_code and not user_code:
        raise ControlError(400, "name the device with device_code or user_code")
    grant = grants.find_grant(device_code=device_code, user_code=user_code)
    if grant is None:
        raise ControlError(404, "no such device")
    return grant


def _decide(body: dict[str, Any], *, approve: bool) -> dict[str, Any]:
    grant = _grant_of(body)
    user = get_user_model().objects.get(username=settings.SANDBOX_DEMO_USERNAME)
    try:
        grants.decide(grant, user, approve=approve)
    except grants.DecisionRefused as refusal:
        raise ControlError(409, str(refusal)) from refusal
    return {"device_code": grant.device_code}


def _device_code(body: dict[str, Any]) -> str:
    code: str = _grant_of(body).device_code
    return code


@control_endpoint("GET")
async def devices(request: HttpRequest) -> HttpResponse:
    rows = await sync_to_async(grants.device_rows)(LIVE.connected_devices(), LIVE.viewer_counts())
    return JsonResponse({"devices": [row.as_json() for row in rows]})


@control_endpoint("POST")
async def approve(request: HttpRequest) -> HttpResponse:
    return JsonResponse(await sync_to_async(_decide)(_body(request), approve=True))


@control_endpoint("POST")
async def deny(request: HttpRequest) -> HttpResponse:
    return JsonResponse(await sync_to_async(_decide)(_body(request), approve=False))


@control_endpoint("POST")
async def expire_access_tokens(request: HttpRequest) -> HttpResponse:
    device_code = await sync_to_async(_device_code)(_body(request))
    expired = await sync_to_async(grants.expire_access_tokens)(device_code)
    return JsonResponse({"expired": expired})


@control_endpoint("POST")
async def revoke_refresh_token(request: HttpRequest) -> HttpResponse:
    device_code = await sync_to_async(_device_code)(_body(request))
    revoked = await sync_to_async(grants.revoke_refresh_tokens)(device_code)
    return JsonResponse({"revoked": revoked})


@control_endpoint("POST")
async def close_socket(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    code = body.get("code", 1000)
    if not isinstance(code, int) or code not in SENDABLE_CLOSE_CODES:
        raise ControlError(400, "code must be 1000-1003, 1007-1014 or 3000-4999")
    channel = LIVE.device_channel(await sync_to_async(_device_code)(body))
    if channel is not None:
        await get_channel_layer().send(channel, {"type": "device.close", "code": code})
    return JsonResponse({"closed": channel is not None})


@control_endpoint("POST")
async def send(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    device_code = await sync_to_async(_device_code)(body)
    text, encoded = body.get("text"), body.get("binary_base64")
    event: dict[str, Any] = {"type": "device.frame"}
    if isinstance(text, str) and encoded is None:
        event["text"] = text
    elif isinstance(encoded, str) and text is None:
        try:
            event["bytes"] = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise ControlError(400, f"binary_base64 is not base64: {error}") from error
    else:
        raise ControlError(400, "give exactly one of text (string) or binary_base64 (string)")
    channel = LIVE.device_channel(device_code)
    if channel is not None:
        await get_channel_layer().send(channel, event)
    LIVE.record(
        device_code,
        "control_to_device",
        session=None,
        text=event.get("text"),
        binary=event.get("bytes"),
        delivered=channel is not None,
    )
    return JsonResponse({"sent": channel is not None})


@control_endpoint("POST")
async def inject_fault(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    count = body.get("count", 1)
    try:
        if not isinstance(count, int) or isinstance(count, bool):
            raise FaultSpecError("'count' must be an integer")
        FAULTS.inject(str(body.get("endpoint", "token")), Fault.from_spec(body), count)
    except FaultSpecError as error:
        raise ControlError(400, str(error)) from error
    return JsonResponse({"pending": FAULTS.pending()})


@control_endpoint("POST")
async def clear_faults(request: HttpRequest) -> HttpResponse:
    FAULTS.clear()
    return JsonResponse({"pending": FAULTS.pending()})


@control_endpoint("GET")
async def messages(request: HttpRequest) -> HttpResponse:
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError as error:
        raise ControlError(400, "after must be an integer") from error
    frames = LIVE.frames(request.GET.get("device_code") or None, after=after)
    return JsonResponse({"messages": [frame.as_json() for frame in frames]})


@control_endpoint("POST")
async def clear_messages(request: HttpRequest) -> HttpResponse:
    LIVE.clear_frames()
    return JsonResponse({"cleared": True})
