"""The OAuth endpoints' successful answers (protocol.md 1.1-1.3): their shapes
and what each field may hold.

A device authorization answer is refused whole (:class:`UnusableBody`, which
the caller turns into an event) when its lifetimes are absurd or its codes
too long to show:

* ``expires_in`` more than 0 and at most a day, ``interval`` from 1 s to
  10 min and below ``expires_in`` (RFC 8628 section 3.2 leaves them open; an
  ``interval`` of a million seconds would show a dead code for days, and
  ``expires_in=0`` would start a new flow every second);
* ``user_code`` at most :data:`MAX_USER_CODE_CHARS` characters (it is printed,
  put in a QR code and in systemd's status line), URIs at most
  :data:`MAX_URI_CHARS`, the device code at most :data:`MAX_DEVICE_CODE_CHARS`.

``verification_uri_complete`` is only kept when it is https (http only to a
loopback host) and has the origin of ``verification_uri``: it is printed and
QR-encoded for a person to open, so a ``javascript:`` link or another host is
dropped (with a warning; the plain URI and the code still work).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import attrs

from intercom_fsm.events import AuthOperation, DeviceCodeIssued, TokenGrant
from intercom_fsm.strict_json import (
    STRICT_CONVERTER,
    Seconds,
    Text,
    VisibleText,
    describe_structure_error,
)
from intercom_fsm.transport_policy import is_loopback_host

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 5.0
"""RFC 8628 section 3.2: ``interval`` defaults to 5 seconds."""

MAX_EXPIRES_IN = 86_400.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 600.0
MAX_USER_CODE_CHARS = 64
MAX_URI_CHARS = 2048
MAX_DEVICE_CODE_CHARS = 2048

MAX_TOKEN_LIFETIME = 366 * 86_400.0
"""A token that claims to live longer is treated as living a year: it is
refreshed then, and its expiry stays a date a computer can print."""


class UnusableBody(Exception):
    """The answer's body cannot be used; the message says why, quoting no value."""


@attrs.frozen
class DeviceAuthorizationBody:
    """RFC 8628 section 3.2."""

    device_code: VisibleText = attrs.field(repr=False)
    user_code: VisibleText
    verification_uri: VisibleText
    expires_in: Seconds
    verification_uri_complete: VisibleText | None = None
    interval: Seconds = attrs.field(default=Seconds(DEFAULT_POLL_INTERVAL))


@attrs.frozen
class TokenBody:
    """RFC 6749 section 5.1. ``refresh_token`` is optional on a refresh answer
    (the server may keep the old one); the caller decides whether it must be
    there."""

    access_token: VisibleText = attrs.field(repr=False)
    token_type: Text
    expires_in: Seconds
    refresh_token: VisibleText | None = attrs.field(default=None, repr=False)
    scope: Text | None = None


@attrs.frozen
class OAuthErrorBody:
    """RFC 6749 section 5.2."""

    error: Text
    error_description: Text | None = None


def device_code_issued(document: dict[str, Any]) -> DeviceCodeIssued:
    try:
        body = STRICT_CONVERTER.structure(document, DeviceAuthorizationBody)
    except Exception as error:
        raise UnusableBody(describe_structure_error(error)) from None
    _check_lengths(body)
    _check_lifetimes(body)
    if not body.verification_uri.lower().startswith(("https://", "http://")):
        raise UnusableBody("field 'verification_uri' is not an http(s) URL")
    complete = body.verification_uri_complete
    problem = complete_uri_problem(body.verification_uri, complete) if complete else None
    if problem is not None:
        logger.warning(
            "device authorization: verification_uri_complete dropped (%s); "
            "the code and verification_uri are shown instead",
            problem,
        )
        complete = None
    return DeviceCodeIssued(
        device_code=body.device_code,
        user_code=body.user_code,
        verification_uri=body.verification_uri,
        expires_in=body.expires_in,
        interval=body.interval,
        verification_uri_complete=complete,
    )


def _check_lengths(body: DeviceAuthorizationBody) -> None:
    for name, value, limit in (
        ("user_code", body.user_code, MAX_USER_CODE_CHARS),
        ("device_code", body.device_code, MAX_DEVICE_CODE_CHARS),
        ("verification_uri", body.verification_uri, MAX_URI_CHARS),
        ("verification_uri_complete", body.verification_uri_complete or "", MAX_URI_CHARS),
    ):
        if len(value) > limit:
            raise UnusableBody(f"field '{name}' is longer than {limit} characters")


def _check_lifetimes(body: DeviceAuthorizationBody) -> None:
    if not 0 < body.expires_in <= MAX_EXPIRES_IN:
        raise UnusableBody(
            f"field 'expires_in' must be more than 0 and at most {MAX_EXPIRES_IN:g} s"
        )
    if not MIN_INTERVAL <= body.interval <= MAX_INTERVAL:
        raise UnusableBody(
            f"field 'interval' must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} s"
        )
    if body.interval >= body.expires_in:
        raise UnusableBody(
            "field 'interval' is not shorter than 'expires_in': no poll could succeed"
        )


def complete_uri_problem(verification_uri: str, complete: str) -> str | None:
    """Why ``complete`` must not be shown to a person, or None."""
    try:
        plain, full = urlsplit(verification_uri), urlsplit(complete)
        plain_port, full_port = plain.port, full.port
    except ValueError:
        return "it is not a valid URL"
    if full.scheme.lower() not in ("https", "http"):
        return "it is not an http(s) URL"
    if full.scheme.lower() == "http" and not is_loopback_host(full.hostname):
        return "plain http to a host that is not loopback"
    same_origin = (
        full.scheme.lower() == plain.scheme.lower()
        and (full.hostname or "") == (plain.hostname or "")
        and full_port == plain_port
    )
    if not same_origin:
        return "its origin is not verification_uri's"
    return None


def token_grant(
    document: dict[str, Any], operation: AuthOperation, sent_refresh_token: str | None
) -> TokenGrant:
    try:
        body = STRICT_CONVERTER.structure(document, TokenBody)
    except Exception as error:
        raise UnusableBody(describe_structure_error(error)) from None
    if body.token_type.lower() != "bearer":
        raise UnusableBody("field 'token_type' is not 'Bearer'")
    refresh_token: str | None = body.refresh_token
    if refresh_token is None and operation is AuthOperation.REFRESH:
        refresh_token = sent_refresh_token
    if refresh_token is None:
        raise UnusableBody("missing field 'refresh_token'")
    return TokenGrant(
        access_token=body.access_token,
        refresh_token=refresh_token,
        expires_in=min(body.expires_in, MAX_TOKEN_LIFETIME),
        scope=body.scope,
    )
