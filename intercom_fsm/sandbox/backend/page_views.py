"""The monitor page and its small JSON API, for a signed-in person.

``/`` (and ``/device/``, the ``verification_uri``; ``?user_code=`` pre-fills
the form) shows the page; ``/api/devices/`` lists the device flows;
``/api/devices/decide/`` approves or denies one by its user code, validated by
django-oauth-toolkit's own ``DeviceGrantForm``. The page's script and style
are package files served by :func:`asset` (no collectstatic).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider.views.device import DeviceGrantForm

from intercom_fsm.sandbox.backend import grants
from intercom_fsm.sandbox.backend.live import LIVE

ASSET_TYPES = {
    "monitor.js": "text/javascript; charset=utf-8",
    "audio.js": "text/javascript; charset=utf-8",
    "monitor.css": "text/css; charset=utf-8",
}


def _monitor(request: HttpRequest) -> HttpResponse:
    user_code = grants.normalize_user_code(request.GET.get("user_code", ""))[:32]
    response: HttpResponse = render(request, "sandbox/monitor.html", {"user_code": user_code})
    return response


def _signed_in(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated)


def _not_signed_in() -> JsonResponse:
    return JsonResponse({"error": "sign in first"}, status=401)


async def _device_list(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return _not_signed_in()
    # Async so that the live registry is read on the event loop, where it is written.
    connected, viewers = LIVE.connected_devices(), LIVE.viewer_counts()
    rows = await sync_to_async(grants.device_rows)(connected, viewers)
    return JsonResponse({"devices": [row.as_json() for row in rows]})


def _decision_form_errors(form: Any) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def _decide(request: HttpRequest) -> HttpResponse:
    if not _signed_in(request):
        return _not_signed_in()
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("decision") not in ("approve", "deny"):
        return JsonResponse({"error": "send {user_code, decision: approve|deny}"}, status=400)
    user_code = grants.normalize_user_code(str(body.get("user_code", "")))
    form = DeviceGrantForm({"user_code": user_code})
    if not form.is_valid():
        return JsonResponse({"error": _decision_form_errors(form)}, status=409)
    grant = form.cleaned_data["device_grant"]
    try:
        grants.decide(grant, request.user, approve=body["decision"] == "approve")
    except grants.DecisionRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=409)
    status = "approved" if body["decision"] == "approve" else "denied"
    return JsonResponse({"user_code": grant.user_code, "status": status})


async def asset(request: HttpRequest, name: str) -> HttpResponse:
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        raise Http404(name)
    data = await sync_to_async(_read_asset)(name)
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "no-cache"
    return response


def _read_asset(name: str) -> bytes:
    return (resources.files("intercom_fsm.sandbox.backend") / "assets" / name).read_bytes()


# Django's decorators are untyped: applied as calls, their results keep the view type.
monitor: Any = require_GET(login_required(_monitor))
device_list: Any = require_GET(_device_list)
decide: Any = require_POST(_decide)
