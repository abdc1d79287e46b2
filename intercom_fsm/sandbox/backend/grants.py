"""Device grants in the database: find, approve or deny, list, and trace tokens to them.

Synchronous Django ORM code; the async consumers and views call it through
``sync_to_async``. Approval follows django-oauth-toolkit's own semantics: a
pending, unexpired ``DeviceGrant`` gets the approving user and the status
``authorized`` (or ``denied``), exactly what DOT's ``device-confirm`` view does.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import close_old_connections, transaction
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_device_grant_model,
    get_refresh_token_model,
)

from intercom_fsm.sandbox.backend.models import DeviceRecord

logger = logging.getLogger(__name__)


class DecisionRefused(Exception):
    """The grant cannot be approved or denied (unknown, expired or already decided)."""


def normalize_user_code(text: str) -> str:
    """What a person types, as DOT stores it: upper case, no spaces or dashes."""
    return "".join(text.split()).replace("-", "").upper()


def find_grant(*, device_code: str | None = None, user_code: str | None = None) -> Any:
    """The ``DeviceGrant`` with that device code or user code, or None."""
    grants = get_device_grant_model().objects
    if device_code:
        return grants.filter(device_code=device_code).first()
    if user_code:
        return grants.filter(user_code=normalize_user_code(user_code)).first()
    return None


def decide(grant: Any, user: Any, *, approve: bool) -> None:
    """Approve or deny a pending grant as ``user``."""
    if grant.is_expired():
        raise DecisionRefused("the code has expired")
    if grant.status != grant.AUTHORIZATION_PENDING:
        raise DecisionRefused("the code has already been used")
    grant.user = user
    grant.status = grant.AUTHORIZED if approve else grant.DENIED
    grant.save(update_fields=["user", "status"])
    logger.info("device %s %s by %s", grant.user_code, grant.status, user.get_username())


def approve_as(username: str, device_code: str) -> None:
    """Approve a device as ``username``; for ``--auto-approve``, from a timer thread."""
    try:
        grant = find_grant(device_code=device_code)
        user = get_user_model().objects.get(username=username)
        if grant is not None and grant.status == grant.AUTHORIZATION_PENDING:
            decide(grant, user, approve=True)
    except DecisionRefused as refusal:
        logger.info("auto-approval skipped: %s", refusal)
    finally:
        close_old_connections()


@dataclass(frozen=True)
class DeviceRow:
    """One device flow as the page and the control API list it."""

    device_code: str
    user_code: str
    status: str
    device_type: str
    device_os: str
    connected: bool
    viewers: int
    tokens_issued: bool
    created: str
    expires: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def grant_status(grant: Any, record: Any, now: datetime) -> str:
    """``approved``, ``pending``, ``denied`` or ``expired`` (without saving DOT's expiry)."""
    if record is not None and record.token_family is not None:
        return "approved"
    if grant.status == grant.DENIED:
        return "denied"
    if grant.status == grant.EXPIRED or now >= grant.expires:
        return "expired"
    return "approved" if grant.status == grant.AUTHORIZED else "pending"


def device_rows(connected: set[str], viewers: dict[str, int], limit: int = 50) -> list[DeviceRow]:
    """The newest device flows, with ``connected`` overriding the grant status."""
    grants = list(get_device_grant_model().objects.order_by("-id")[:limit])
    records = {
        record.device_code: record
        for record in DeviceRecord.objects.filter(device_code__in=[g.device_code for g in grants])
    }
    now = timezone.now()
    rows = []
    for grant in grants:
        record = records.get(grant.device_code)
        online = grant.device_code in connected
        rows.append(
            DeviceRow(
                device_code=grant.device_code,
                user_code=grant.user_code,
                status="connected" if online else grant_status(grant, record, now),
                device_type=record.device_type if record else "",
                device_os=record.device_os if record else "",
                connected=online,
                viewers=viewers.get(grant.device_code, 0),
                tokens_issued=bool(record and record.token_family),
                created=(record.created if record else grant.expires).isoformat(),
                expires=grant.expires.isoformat(),
            )
        )
    return rows


def token_checksum(raw_token: str) -> str:
    """How DOT finds a token: the SHA-256 of its value."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def record_issued_grant(device_code: str, access_token: str) -> None:
    """Remember which refresh-token family the device code's exchange produced."""
    access = (
        get_access_token_model()
        .objects.select_related("refresh_token")
        .get(token_checksum=token_checksum(access_token))
    )
    DeviceRecord.objects.filter(device_code=device_code).update(
        token_family=access.refresh_token.token_family, tokens_issued_at=timezone.now()
    )


def device_code_for_bearer(raw_token: str) -> tuple[str | None, str]:
    """The device code whose grant this access token belongs to, or None and why not."""
    access = (
        get_access_token_model()
        .objects.select_related("refresh_token")
        .filter(token_checksum=token_checksum(raw_token))
        .first()
    )
    if access is None:
        return None, "unknown or revoked token"
    if access.is_expired():
        return None, "expired token"
    refresh = getattr(access, "refresh_token", None)
    if refresh is None or refresh.revoked is not None or refresh.token_family is None:
        return None, "token outside any device grant"
    record = DeviceRecord.objects.filter(token_family=refresh.token_family).first()
    if record is None:
        return None, "token outside any device grant"
    return record.device_code, "ok"


def _live_refresh_tokens(device_code: str) -> Any:
    record = DeviceRecord.objects.filter(device_code=device_code).first()
    if record is None or record.token_family is None:
        return get_refresh_token_model().objects.none()
    return get_refresh_token_model().objects.filter(
        token_family=record.token_family, revoked__isnull=True
    )


def expire_access_tokens(device_code: str) -> int:
    """Make the device's live access tokens expired (a second ago); returns how many."""
    access_ids = [
        refresh.access_token_id
        for refresh in _live_refresh_tokens(device_code)
        if refresh.access_token_id is not None
    ]
    past = timezone.now() - timedelta(seconds=1)
    return int(get_access_token_model().objects.filter(id__in=access_ids).update(expires=past))


def revoke_refresh_tokens(device_code: str) -> int:
    """Revoke the device's live refresh tokens (and with them its access tokens)."""
    with transaction.atomic():
        refresh_tokens = list(_live_refresh_tokens(device_code))
        for refresh in refresh_tokens:
            refresh.revoke()
    return len(refresh_tokens)
