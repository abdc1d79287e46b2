"""Parsing of the OAuth endpoints' answers (protocol.md 1.1-1.3) into events.

:func:`parse_answer` takes what the HTTP layer saw (status, content type, body
bytes, ``Retry-After``) and returns one of the machine's typed auth events. It
never raises, whatever the bytes are, so it can be fuzzed without a server.
Reasons say what was wrong without quoting any value from the body.

What counts as what:

* 5xx, 429 and an unusable answer (an HTML error page, a missing field, a
  number where a string belongs) are :class:`AuthTransientError`: try again
  after a backoff. So is an OAuth error the table below does not name.
* ``invalid_client`` / ``unauthorized_client`` from any endpoint are
  :class:`ClientRejected`: the client's own configuration is wrong, and no
  retry soon will fix it (a refresh keeps its grant).
* On a poll (RFC 8628 section 3.5), only ``authorization_pending`` and
  ``slow_down`` let the flow go on, ``access_denied`` and ``expired_token``
  end it as such; any other answer ends it too, as :class:`DeviceFlowFailed`:
  another OAuth error (``invalid_grant``, ``invalid_request``, ...), a 4xx
  without an OAuth body, a 200 that is not a usable grant (no
  ``refresh_token`` or ``expires_in``).
* On a refresh, ``invalid_grant`` is :class:`RefreshRejected`.

The body shapes are attrs classes structured by the project's strict cattrs
converter (:mod:`intercom_fsm.strict_json`), so a number is never silently
accepted where a string belongs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

from intercom_fsm.adapters.auth_bodies import (
    OAuthErrorBody,
    UnusableBody,
    device_code_issued,
    token_grant,
)
from intercom_fsm.events import (
    AccessDenied,
    AuthOperation,
    AuthorizationPending,
    AuthTransientError,
    ClientRejected,
    DeviceCodeExpired,
    DeviceCodeIssued,
    DeviceFlowFailed,
    RefreshRejected,
    SlowDown,
    TokensGranted,
    TokensRefreshed,
)
from intercom_fsm.redact import one_line_text
from intercom_fsm.strict_json import (
    STRICT_CONVERTER,
    describe_structure_error,
    is_visible_ascii,
    json_type_name,
)

PollResult = (
    TokensGranted
    | AuthorizationPending
    | SlowDown
    | AccessDenied
    | DeviceCodeExpired
    | DeviceFlowFailed
    | ClientRejected
    | AuthTransientError
)
RefreshResult = TokensRefreshed | RefreshRejected | ClientRejected | AuthTransientError
DeviceAuthorizationResult = DeviceCodeIssued | ClientRejected | AuthTransientError
AuthResult = DeviceAuthorizationResult | PollResult | RefreshResult

CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
UNUSABLE_GRANT = "invalid_token_answer"
"""DeviceFlowFailed's error for a 200 poll answer that is not a usable grant."""

MAX_RETRY_AFTER = 3600.0
"""A longer ``Retry-After`` is capped: the device must not go silent for days
because of one odd header."""

MAX_DESCRIPTION_CHARS = 200

# --- The HTTP answer and its parsing -------------------------------------------------


@attrs.frozen
class HttpAnswer:
    """What the HTTP layer saw; the only input of :func:`parse_answer`."""

    status: int
    content_type: str | None
    body: bytes = attrs.field(repr=False)
    retry_after: str | None = None


_OPERATION_LABELS = {
    AuthOperation.DEVICE_AUTHORIZATION: "device authorization",
    AuthOperation.POLL: "token poll",
    AuthOperation.REFRESH: "token refresh",
}
_ENDPOINT_LABELS = {
    AuthOperation.DEVICE_AUTHORIZATION: "device authorization endpoint",
    AuthOperation.POLL: "token endpoint",
    AuthOperation.REFRESH: "token endpoint",
}


def operation_label(operation: AuthOperation) -> str:
    return _OPERATION_LABELS[operation]


def endpoint_label(operation: AuthOperation) -> str:
    return _ENDPOINT_LABELS[operation]


class _Refusal(Exception):
    """Internal: the answer is unusable; the message is a safe reason."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_answer(
    operation: AuthOperation,
    answer: HttpAnswer,
    *,
    sent_refresh_token: str | None = None,
    secrets: tuple[str | None, ...] = (),
    now: Callable[[], float] = time.time,
) -> AuthResult:
    """Turn one HTTP answer into the event for ``operation``. Never raises.

    ``sent_refresh_token`` is the refresh token of a refresh request: when the
    server does not rotate it (no ``refresh_token`` in the answer), the grant
    keeps the one that was sent. ``secrets`` (what the request carried) are
    replaced in any server text an event passes on, before it is cut.
    """
    try:
        return _parse(operation, answer, sent_refresh_token, secrets, now)
    except _Refusal as refusal:
        return AuthTransientError(
            operation=operation,
            # "token poll response: missing field ..." but "token poll: token endpoint ..."
            reason=f"{operation_label(operation)}{_joiner(refusal.reason)}{refusal.reason}",
            retry_after=refusal.retry_after,
        )
    except Exception as error:  # the parser's promise: nothing escapes
        return AuthTransientError(
            operation=operation,
            reason=f"{operation_label(operation)}: unexpected {type(error).__name__} "
            "while reading the answer",
        )


def _joiner(reason: str) -> str:
    return " " if reason.startswith("response:") else ": "


def _parse(
    operation: AuthOperation,
    answer: HttpAnswer,
    sent_refresh_token: str | None,
    secrets: tuple[str | None, ...],
    now: Callable[[], float],
) -> AuthResult:
    endpoint = endpoint_label(operation)
    status = answer.status
    if status == 200:
        document = _json_object(answer, endpoint)
        try:
            if operation is AuthOperation.DEVICE_AUTHORIZATION:
                return device_code_issued(document)
            grant = token_grant(document, operation, sent_refresh_token)
        except UnusableBody as unusable:
            if operation is AuthOperation.POLL:
                # RFC 8628 section 3.5: polling the same code again cannot help.
                return DeviceFlowFailed(UNUSABLE_GRANT, f"{endpoint} answered 200: {unusable}")
            raise _Refusal(f"response: {unusable}") from None
        if operation is AuthOperation.POLL:
            return TokensGranted(grant=grant)
        return TokensRefreshed(grant=grant)
    if status == 429 or 500 <= status <= 599:
        retry_after = parse_retry_after(answer.retry_after, now)
        kind = "rate limited" if status == 429 else "server error"
        reason = f"{endpoint} answered {status}{_body_note(answer)} ({kind})"
        if retry_after is not None:
            reason += f"; retry after {retry_after:g} s"
        raise _Refusal(reason, retry_after)
    if 400 <= status <= 499:
        return _oauth_error(operation, answer, endpoint, secrets)
    if 300 <= status <= 399:
        raise _Refusal(f"{endpoint} answered {status} (redirects are not followed)")
    raise _Refusal(f"{endpoint} answered an unexpected status {status}{_body_note(answer)}")


def _body_note(answer: HttpAnswer) -> str:
    media_type = _media_type(answer.content_type)
    if not answer.body:
        return " with an empty body"
    if media_type == "text/html":
        return " with a text/html body"
    return ""


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type if is_visible_ascii(media_type) and len(media_type) <= 80 else "unusual"


def _json_object(answer: HttpAnswer, endpoint: str) -> dict[str, Any]:
    """The body as a JSON object, or a :class:`_Refusal` saying why not."""
    media_type = _media_type(answer.content_type)
    where = f"{endpoint} answered {answer.status}"
    if media_type == "text/html":
        raise _Refusal(f"{where} with a text/html body instead of JSON")
    if not answer.body:
        raise _Refusal(f"{where} with an empty body instead of JSON")
    try:
        document = json.loads(answer.body)
    except (ValueError, RecursionError):
        shown = media_type or "no content type"
        raise _Refusal(f"{where} with a body that is not JSON ({shown})") from None
    if not isinstance(document, dict):
        raise _Refusal(f"{where} with JSON {json_type_name(document)} instead of an object")
    return document


_POLL_ERRORS: dict[str, Callable[[str | None], PollResult]] = {
    "authorization_pending": lambda _description: AuthorizationPending(),
    "slow_down": lambda _description: SlowDown(),
    "access_denied": lambda description: AccessDenied(description=description),
    "expired_token": lambda _description: DeviceCodeExpired(),
}


def _oauth_error(
    operation: AuthOperation, answer: HttpAnswer, endpoint: str, secrets: tuple[str | None, ...]
) -> AuthResult:
    """A 4xx answer, by the table in the module's docstring."""
    is_poll = operation is AuthOperation.POLL
    try:
        document = _json_object(answer, endpoint)
        error_body = STRICT_CONVERTER.structure(document, OAuthErrorBody)
    except _Refusal as refusal:
        reason = f"{refusal.reason} (no OAuth error)"
        if is_poll:
            return DeviceFlowFailed(f"http_{answer.status}", reason)
        raise _Refusal(reason) from None
    except Exception as error:
        reason = f"{endpoint} answered {answer.status} with an unusable OAuth error"
        reason += f": {describe_structure_error(error)}"
        if is_poll:
            return DeviceFlowFailed(f"http_{answer.status}", reason)
        raise _Refusal(reason) from None
    code = error_body.error
    description = clean_description(error_body.error_description, secrets)
    shown_code = clean_description(code, secrets) or "(empty)"
    if code in CLIENT_ERRORS:
        return ClientRejected(operation=operation, error=code, description=description)
    if is_poll and code in _POLL_ERRORS:
        return _POLL_ERRORS[code](description)
    if is_poll:
        return DeviceFlowFailed(shown_code, description)
    if operation is AuthOperation.REFRESH and code == "invalid_grant":
        return RefreshRejected(error=code, description=description)
    reason = f"{endpoint} answered {answer.status} {shown_code}"
    if description:
        reason += f" ({description})"
    if operation is AuthOperation.REFRESH:
        reason += "; the stored tokens are kept"
    raise _Refusal(reason)


def clean_description(text: str | None, secrets: tuple[str | None, ...] = ()) -> str | None:
    """Server text made safe for one log line: secrets replaced, printable
    only, bounded; None when nothing is left."""
    if text is None:
        return None
    return one_line_text(text, secrets, MAX_DESCRIPTION_CHARS) or None


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds from now (RFC 9110 section 10.2.3: delay
    seconds or an HTTP date), capped at :data:`MAX_RETRY_AFTER`; None when
    absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text.isascii() and text.isdigit():
        return min(float(int(text)), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        delay = moment.timestamp() - now()
    except (OverflowError, ValueError, OSError):
        return None
    return min(max(delay, 0.0), MAX_RETRY_AFTER)
