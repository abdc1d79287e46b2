"""The auth adapter against answers RFC 8628 says end a flow, answers whose
numbers or texts are absurd, and error texts that carry a secret, over a real
loopback HTTP server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from intercom_fsm.adapters.auth_responses import AuthResult
from intercom_fsm.events import (
    AuthOperation,
    AuthTransientError,
    ClientRejected,
    DeviceCodeIssued,
    DeviceFlowFailed,
    TokensGranted,
)
from tests.auth.conftest import (
    DEVICE_PATH,
    TOKEN_PATH,
    ScriptedOAuthServer,
    device_json,
    make_client,
    token_json,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

DEVICE_CODE = "device-code-HARD-0123456789abcdefghijklmn"
REFRESH_TOKEN = "refresh-token-HARD-4444"


# --- RFC 8628 section 3.5: errors that end the flow ------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_grant", "error_description": "no such code"}, "invalid_grant"),
        (400, {"error": "invalid_request"}, "invalid_request"),
        (400, {"error": "unsupported_grant_type"}, "unsupported_grant_type"),
        (404, None, "http_404"),  # a 4xx with no OAuth body
        (403, None, "http_403"),
    ],
)
async def test_a_poll_error_that_is_not_pending_or_slow_down_ends_the_flow(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    status: int,
    body: dict[str, Any] | None,
    error: str,
) -> None:
    answer = (
        oauth_server.json(body, status=status)
        if body is not None
        else oauth_server.raw(b"<html>not here</html>", status, "text/html")
    )
    oauth_server.then(TOKEN_PATH, answer)
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert isinstance(result, DeviceFlowFailed), result
    assert result.error == error


@pytest.mark.parametrize("missing", ["refresh_token", "expires_in"])
async def test_a_granted_answer_that_is_not_a_usable_grant_ends_the_flow(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession, missing: str
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json(**{missing: ...})))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert isinstance(result, DeviceFlowFailed), result
    assert f"missing field '{missing}'" in (result.description or "")


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
@pytest.mark.parametrize("operation", list(AuthOperation))
async def test_a_rejected_client_is_said_plainly_by_every_endpoint(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    operation: AuthOperation,
    error: str,
) -> None:
    path = DEVICE_PATH if operation is AuthOperation.DEVICE_AUTHORIZATION else TOKEN_PATH
    body = {"error": error, "error_description": "unknown client"}
    oauth_server.then(path, oauth_server.json(body, status=401))
    client = make_client(http_session, oauth_server.url)
    calls: dict[AuthOperation, Callable[[], Awaitable[AuthResult]]] = {
        AuthOperation.DEVICE_AUTHORIZATION: client.request_device_code,
        AuthOperation.POLL: lambda: client.poll_token(DEVICE_CODE),
        AuthOperation.REFRESH: lambda: client.refresh(REFRESH_TOKEN),
    }
    result = await calls[operation]()
    assert result == ClientRejected(operation, error, "unknown client")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_and_rate_limits_stay_transient(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession, status: int
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.raw(b"busy", status, "text/plain"))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert isinstance(result, AuthTransientError) and not result.timed_out


async def test_a_poll_that_times_out_says_so(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.hang())
    client = make_client(http_session, oauth_server.url, timeout=0.5)
    result = await client.poll_token(DEVICE_CODE)
    assert isinstance(result, AuthTransientError)
    assert result.timed_out
    assert "within 0.5 s" in result.reason


# --- Device authorization answers with absurd numbers or texts ------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"expires_in": 0, "interval": 0}, "'expires_in' must be more than 0"),
        ({"expires_in": 90_000}, "'expires_in' must be more than 0 and at most 86400 s"),
        ({"interval": 1e6}, "'interval' must be between 1 and 600 s"),
        ({"interval": 0}, "'interval' must be between 1 and 600 s"),
        ({"expires_in": 60, "interval": 60}, "'interval' is not shorter than 'expires_in'"),
        ({"user_code": "W" * 60_000}, "'user_code' is longer than 64 characters"),
        ({"verification_uri": "https://e.example/" + "a" * 3000}, "longer than 2048"),
    ],
)
async def test_an_absurd_device_authorization_answer_is_refused(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.json(device_json(**overrides)))
    result = await make_client(http_session, oauth_server.url).request_device_code()
    # Transient: the machine's backoff grows, no new flow every second.
    assert isinstance(result, AuthTransientError), result
    assert result.operation is AuthOperation.DEVICE_AUTHORIZATION
    assert expected in result.reason


@pytest.mark.parametrize(
    "complete",
    [
        "javascript:alert(document.cookie)",
        "https://phish.example/device?user_code=WDJB-MJHT",
        "http://example.com/device?user_code=WDJB-MJHT",  # plain http, not loopback
        "https://example.com:8443/device?user_code=WDJB-MJHT",  # another port
        "data:text/html,<script>x</script>",
    ],
)
async def test_a_complete_uri_from_elsewhere_is_dropped_with_a_warning(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    complete: str,
) -> None:
    oauth_server.then(
        DEVICE_PATH, oauth_server.json(device_json(verification_uri_complete=complete))
    )
    with caplog.at_level(logging.WARNING):
        result = await make_client(http_session, oauth_server.url).request_device_code()
    assert isinstance(result, DeviceCodeIssued), result
    assert result.verification_uri_complete is None
    assert (result.user_code, result.verification_uri) == (
        "WDJB-MJHT",
        "https://example.com/device",
    )
    assert any("verification_uri_complete dropped" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("plain", "complete"),
    [
        ("https://example.com/device", "https://example.com/device?user_code=WDJB-MJHT"),
        ("http://127.0.0.1:8000/device/", "http://127.0.0.1:8000/device/?user_code=WDJB-MJHT"),
    ],
)
async def test_a_complete_uri_of_the_same_origin_is_kept(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    plain: str,
    complete: str,
) -> None:
    document = device_json(verification_uri=plain, verification_uri_complete=complete)
    oauth_server.then(DEVICE_PATH, oauth_server.json(document))
    result = await make_client(http_session, oauth_server.url).request_device_code()
    assert isinstance(result, DeviceCodeIssued)
    assert result.verification_uri_complete == complete


async def test_a_token_lifetime_beyond_a_year_is_taken_as_a_year(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json(expires_in=1e300)))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert isinstance(result, TokensGranted)
    assert result.grant.expires_in == 366 * 86_400


# --- Redact first, then cut ----------------------------------------------------------------


@pytest_asyncio.fixture
async def garbage_status_server() -> AsyncIterator[tuple[str, list[int]]]:
    """Answers each request with a status line that is garbage and ends with
    the device code; the padding before it is taken from ``paddings``."""
    paddings: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        padding = b"y" * paddings.pop(0)
        writer.write(b"HTTP/1.1 2x0 " + padding + DEVICE_CODE.encode() + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", paddings
    finally:
        server.close()
        await server.wait_closed()


async def test_no_part_of_the_device_code_survives_a_cut_error_text(
    garbage_status_server: tuple[str, list[int]], http_session: aiohttp.ClientSession
) -> None:
    url, paddings = garbage_status_server
    client = make_client(http_session, url)
    # Wherever the 200-character cut falls, through the code or not.
    for padding in range(90, 190, 6):
        paddings.append(padding)
        result = await client.poll_token(DEVICE_CODE)
        assert isinstance(result, AuthTransientError), result
        fragments = {DEVICE_CODE[i : i + 8] for i in range(len(DEVICE_CODE) - 7)}
        leaked = [f for f in fragments if f in result.reason]
        assert not leaked, (padding, result.reason)
