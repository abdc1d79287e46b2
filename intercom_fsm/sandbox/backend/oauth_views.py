"""The OAuth endpoints of protocol.md section 1: django-oauth-toolkit's views, with what DOT lacks.

``POST /oauth/device-authorization/`` is DOT's device authorization view, with
the sandbox's device code lifetime (DOT leaves oauthlib's 30 minutes), the
required ``device_type``/``device_os`` fields checked and recorded, and, with
``--auto-approve``, an approval as the demo user a second later.

``POST /oauth/token/`` is DOT's token view. For the device code grant it first
authenticates the client (DOT would answer ``authorization_pending`` to
anyone holding the device code), then answers ``expired_token`` once the code
has expired and ``slow_down`` to a device polling faster than its interval
(DOT does neither), and refuses a device code that was already exchanged
(DOT would issue a second grant). Refresh, with rotation, is DOT's own.

Both endpoints can be given faults by the control API (see :mod:`.faults`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_plus, urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_application_model
from oauth2_provider.views import DeviceAuthorizationView, TokenView

from intercom_fsm.sandbox.backend import grants, site
from intercom_fsm.sandbox.backend.faults import FAULTS, Fault
from intercom_fsm.sandbox.backend.models import DeviceRecord
from intercom_fsm.sandbox.backend.pacing import POLL_PACER

logger = logging.getLogger(__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTO_APPROVE_DELAY_SECONDS = 1.0
FAULT_HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The sandbox was told to answer with this page.</p></body></html>"
)

View = Callable[[HttpRequest], HttpResponse]
AsyncView = Callable[[HttpRequest], Awaitable[HttpResponse]]


def oauth_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class SandboxDeviceServer(DeviceAuthorizationView.server_class):  # type: ignore[misc]
    """oauthlib's device endpoint with the sandbox's device code lifetime and verification URIs.

    DOT passes no lifetime (oauthlib then says 30 minutes), and takes the URIs
    from settings, which are written before ``--port 0`` has picked the port.
    """

    @property
    def expires_in(self) -> int:
        return int(settings.SANDBOX_DEVICE_EXPIRES_IN)

    @property
    def verification_uri(self) -> str:
        return site.urls().verification_uri

    def verification_uri_complete(self, user_code: str) -> str:
        return f"{site.urls().verification_uri}?{urlencode({'user_code': user_code})}"


class RecordingDeviceAuthorizationView(DeviceAuthorizationView):  # type: ignore[misc]
    server_class = SandboxDeviceServer

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        device_type = request.POST.get("device_type", "").strip()
        device_os = request.POST.get("device_os", "").strip()
        if not device_type or not device_os:
            return oauth_error(400, "invalid_request", "device_type and device_os are required")
        response: HttpResponse = super().post(request, *args, **kwargs)
        if response.status_code != 200:
            return response
        device_code = json.loads(response.content)["device_code"]
        DeviceRecord.objects.create(
            device_code=device_code, device_type=device_type[:100], device_os=device_os[:200]
        )
        logger.info("device flow started: %s on %s", device_type, device_os)
        if settings.SANDBOX_AUTO_APPROVE:
            timer = threading.Timer(
                AUTO_APPROVE_DELAY_SECONDS,
                grants.approve_as,
                args=(settings.SANDBOX_DEMO_USERNAME, device_code),
            )
            timer.daemon = True
            timer.start()
        return response


def _client_credentials(request: HttpRequest) -> tuple[str, str]:
    """Client id and secret from HTTP Basic auth (RFC 6749 §2.3.1) or the form body."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


def _client_is_authentic(request: HttpRequest, grant: Any) -> bool:
    client_id, secret = _client_credentials(request)
    if not client_id or not hmac.compare_digest(client_id, grant.client_id):
        return False
    application = get_application_model().objects.filter(client_id=client_id).first()
    if application is None:
        return False
    if application.client_type == application.CLIENT_PUBLIC:
        return True
    return bool(secret) and bool(check_password(secret, application.client_secret))


class GuardedTokenView(TokenView):  # type: ignore[misc]
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.POST.get("grant_type") != DEVICE_CODE_GRANT:
            response: HttpResponse = super().post(request, *args, **kwargs)
            return response
        device_code = request.POST.get("device_code", "")
        if not device_code:
            return oauth_error(400, "invalid_request", "device_code is required")
        refusal = self._refuse_poll(request, device_code)
        if refusal is not None:
            return refusal
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            grants.record_issued_grant(device_code, json.loads(response.content)["access_token"])
            POLL_PACER.forget(device_code)
            logger.info("device code exchanged for tokens")
        return response

    def _refuse_poll(self, request: HttpRequest, device_code: str) -> HttpResponse | None:
        grant = grants.find_grant(device_code=device_code)
        if grant is None:
            return None  # DOT's own answer: 404 device_not_found
        if not _client_is_authentic(request, grant):
            return oauth_error(401, "invalid_client", "client authentication failed")
        record = DeviceRecord.objects.filter(device_code=device_code).first()
        if record is not None and record.token_family is not None:
            return oauth_error(400, "invalid_grant", "this device code was already exchanged")
        if grant.is_expired():
            POLL_PACER.forget(device_code)
            return oauth_error(400, "expired_token", "the device code has expired")
        if POLL_PACER.too_fast(device_code, float(settings.SANDBOX_DEVICE_INTERVAL)):
            interval = POLL_PACER.required_interval(device_code)
            return oauth_error(
                400, "slow_down", f"poll at most once every {interval:g} seconds from now on"
            )
        return None


async def _fault_response(fault: Fault) -> HttpResponse | None:
    """The answer a fault gives, or None when the request goes on (after a hang)."""
    if fault.kind == "hang":
        await asyncio.sleep(fault.seconds)
        return None
    if fault.kind == "slow_down":
        return oauth_error(400, "slow_down", "polling too fast (fault injected by the sandbox)")
    if fault.kind == "html":
        return HttpResponse(FAULT_HTML, status=fault.status, content_type="text/html")
    response = JsonResponse(
        {"error": "server_error", "error_description": "fault injected by the sandbox"},
        status=fault.status,
    )
    if fault.status == 429:
        response["Retry-After"] = "1"
    return response


def with_faults(endpoint: str, view: View) -> AsyncView:
    """An async view that applies the endpoint's queued faults before ``view``.

    Async so that a hang holds only its own request: Django runs sync views
    one at a time on a single thread under ASGI.
    """
    run_view = sync_to_async(view)

    async def endpoint_view(request: HttpRequest) -> HttpResponse:
        fault = FAULTS.take(endpoint)
        if fault is not None:
            logger.info("fault on %s: %s", endpoint, fault.describe())
            answer = await _fault_response(fault)
            if answer is not None:
                return answer
        response: HttpResponse = await run_view(request)
        return response

    exempt: AsyncView = csrf_exempt(endpoint_view)
    return exempt


device_authorization = with_faults(
    "device-authorization", RecordingDeviceAuthorizationView.as_view()
)
token = with_faults("token", GuardedTokenView.as_view())
