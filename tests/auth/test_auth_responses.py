"""The pure OAuth answer parser: tables of odd answers, and fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom_fsm.adapters.auth_responses import (
    MAX_RETRY_AFTER,
    HttpAnswer,
    parse_answer,
    parse_retry_after,
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
from tests.auth.conftest import device_json, dumps, token_json

JSON = "application/json"
ALLOWED: dict[AuthOperation, tuple[type, ...]] = {
    AuthOperation.DEVICE_AUTHORIZATION: (DeviceCodeIssued, ClientRejected, AuthTransientError),
    AuthOperation.POLL: (
        TokensGranted,
        AuthorizationPending,
        SlowDown,
        AccessDenied,
        DeviceCodeExpired,
        DeviceFlowFailed,
        ClientRejected,
        AuthTransientError,
    ),
    AuthOperation.REFRESH: (TokensRefreshed, RefreshRejected, ClientRejected, AuthTransientError),
}


def answer(document: Any, status: int = 200, content_type: str | None = JSON) -> HttpAnswer:
    return HttpAnswer(status=status, content_type=content_type, body=dumps(document))


def reason_of(operation: AuthOperation, http_answer: HttpAnswer) -> str:
    result = parse_answer(operation, http_answer)
    assert isinstance(result, AuthTransientError), result
    return result.reason


# --- Field checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"user_code": ...}, "missing field 'user_code'"),
        ({"device_code": 12}, "field 'device_code' is not a string (got a number)"),
        ({"expires_in": True}, "field 'expires_in' is not a number of seconds (got a boolean)"),
        ({"expires_in": "900"}, "field 'expires_in' is not a number of seconds (got a string)"),
        ({"expires_in": -1}, "field 'expires_in' is negative"),
        ({"interval": -5}, "field 'interval' is negative"),
        ({"interval": None}, "field 'interval' is not a number of seconds (got null)"),
        ({"user_code": ""}, "field 'user_code' is empty"),
        ({"user_code": "AB\x1b[2J"}, "field 'user_code' contains characters"),
        ({"verification_uri": "javascript:alert(1)"}, "not an http(s) URL"),
        ({"verification_uri_complete": ["x"]}, "'verification_uri_complete' is not a string"),
    ],
)
def test_device_authorization_field_problems(overrides: dict[str, Any], expected: str) -> None:
    reason = reason_of(AuthOperation.DEVICE_AUTHORIZATION, answer(device_json(**overrides)))
    assert reason.startswith("device authorization response: ")
    assert expected in reason


def test_interval_defaults_to_five_and_floats_are_accepted() -> None:
    document = device_json(interval=..., expires_in=600.5, verification_uri_complete=...)
    result = parse_answer(AuthOperation.DEVICE_AUTHORIZATION, answer(document))
    assert isinstance(result, DeviceCodeIssued)
    assert result.interval == 5.0
    assert result.expires_in == 600.5
    assert result.verification_uri_complete is None


def test_extra_fields_are_ignored() -> None:
    result = parse_answer(AuthOperation.POLL, answer(token_json(id_token="x", extra={"a": 1})))
    assert isinstance(result, TokensGranted)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"access_token": ...}, "missing field 'access_token'"),
        ({"token_type": "MAC"}, "'token_type' is not 'Bearer'"),
        ({"expires_in": "3600"}, "field 'expires_in' is not a number"),
        ({"access_token": "line\r\nbreak"}, "'access_token' contains characters"),
        ({"scope": 7}, "field 'scope' is not a string"),
    ],
)
def test_token_field_problems(overrides: dict[str, Any], expected: str) -> None:
    reason = reason_of(AuthOperation.REFRESH, answer(token_json(**overrides)))
    assert reason.startswith("token refresh response: ")
    assert expected in reason


def test_token_type_is_case_insensitive() -> None:
    result = parse_answer(AuthOperation.POLL, answer(token_json(token_type="bearer")))
    assert isinstance(result, TokensGranted)


# --- Whole-body problems ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_answer", "expected"),
    [
        (HttpAnswer(200, JSON, b""), "empty body instead of JSON"),
        (HttpAnswer(200, "text/plain", b"hello"), "not JSON (text/plain)"),
        (HttpAnswer(200, None, b"\x00\xff"), "not JSON (no content type)"),
        (HttpAnswer(200, JSON, b"[1, 2]"), "JSON an array instead of an object"),
        (HttpAnswer(200, JSON, b"[" * 100_000), "not JSON"),
        (HttpAnswer(400, "text/html", b"<p>bad</p>"), "text/html body instead of JSON"),
        (HttpAnswer(400, JSON, b'{"error": 5}'), "unusable OAuth error"),
        (HttpAnswer(404, JSON, b'{"error": "device_not_found"}'), "404 device_not_found"),
        (HttpAnswer(302, None, b""), "redirects are not followed"),
        (HttpAnswer(101, None, b""), "unexpected status 101"),
        (HttpAnswer(-1, None, b""), "unexpected status -1"),
        (HttpAnswer(504, "text/html; charset=utf-8", b"<html>"), "504 with a text/html body"),
        (HttpAnswer(500, None, b""), "500 with an empty body (server error)"),
    ],
)
def test_unusable_answers_are_described(http_answer: HttpAnswer, expected: str) -> None:
    assert expected in reason_of(AuthOperation.DEVICE_AUTHORIZATION, http_answer)


def test_server_text_is_cleaned_and_bounded() -> None:
    body = {"error": "access_denied", "error_description": "no\x1b[31m\n" + "x" * 1000}
    result = parse_answer(AuthOperation.POLL, answer(body, status=400))
    assert isinstance(result, AccessDenied)
    assert result.description is not None
    assert "\x1b" not in result.description
    assert "\n" not in result.description
    assert len(result.description) <= 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("30", 30.0),
        (" 7 ", 7.0),
        ("99999999", MAX_RETRY_AFTER),
        ("-3", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ],
)
def test_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=lambda: now) == expected


# --- Fuzzing: nothing escapes, every result is a typed event ---------------------------------

MARKER = "SECRET-MARKER-7f3a"
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just(MARKER),
    st.just(""),
    st.just(1e308),
    st.integers(min_value=10**300, max_value=10**400),
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_KEYS = [
    "device_code",
    "user_code",
    "verification_uri",
    "verification_uri_complete",
    "expires_in",
    "interval",
    "access_token",
    "token_type",
    "refresh_token",
    "scope",
]
# Bodies that look almost right: the known keys with arbitrary values, so the
# fuzzing reaches the field checks and not only the JSON decoder.
almost_right = st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=10)
oauth_errors = st.fixed_dictionaries(
    {
        "error": st.one_of(
            st.sampled_from(
                [
                    "authorization_pending",
                    "slow_down",
                    "access_denied",
                    "expired_token",
                    "invalid_grant",
                    "invalid_client",
                ]
            ),
            json_values,
        )
    },
    optional={"error_description": json_values},
)


def _encode(document: Any) -> bytes:
    try:
        return json.dumps(document).encode()
    except (ValueError, OverflowError):
        return b"{}"


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(_encode),
    almost_right.map(_encode),
    oauth_errors.map(_encode),
    st.builds(lambda document: _encode(document)[:-1], almost_right),  # truncated
)
statuses = st.one_of(
    st.sampled_from([200, 400, 401, 403, 404, 429, 500, 502, 503, 302]),
    st.integers(min_value=-(2**31), max_value=2**31),
)
content_types = st.one_of(
    st.none(),
    st.sampled_from([JSON, "application/json; charset=utf-8", "text/html", "text/plain", ""]),
    st.text(max_size=40),
)
retry_afters = st.one_of(st.none(), st.text(max_size=40), st.integers().map(str))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(list(AuthOperation)),
    status=statuses,
    content_type=content_types,
    body=bodies,
    retry_after=retry_afters,
)
def test_parser_never_raises_and_returns_a_typed_event(
    operation: AuthOperation,
    status: int,
    content_type: str | None,
    body: bytes,
    retry_after: str | None,
) -> None:
    http_answer = HttpAnswer(status, content_type, body, retry_after)
    result = parse_answer(operation, http_answer, sent_refresh_token="sent-refresh-token")
    assert isinstance(result, ALLOWED[operation])
    if isinstance(result, AuthTransientError):
        assert result.operation is operation
        assert result.reason
        assert MARKER not in result.reason or b'"error' in body
        assert "\n" not in result.reason
        if result.retry_after is not None:
            assert 0 <= result.retry_after <= MAX_RETRY_AFTER
