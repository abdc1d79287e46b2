"""The auth adapter against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import aiohttp
import pytest

from intercom_fsm.adapters.auth import AuthClient, AuthSettings
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
    TokenGrant,
    TokensGranted,
    TokensRefreshed,
)
from tests.auth.conftest import (
    CLIENT_SECRET,
    DEVICE_PATH,
    TOKEN_PATH,
    ScriptedOAuthServer,
    device_json,
    make_client,
    token_json,
)

DEVICE_CODE = "device-code-DDDD-3333"
REFRESH_TOKEN = "refresh-token-RRRR-2222"
SECRETS = (CLIENT_SECRET, DEVICE_CODE, REFRESH_TOKEN, "access-token-AAAA-1111")


def assert_transient(
    result: object, operation: AuthOperation, *fragments: str
) -> AuthTransientError:
    assert isinstance(result, AuthTransientError), result
    assert result.operation is operation
    for fragment in fragments:
        assert fragment in result.reason, result.reason
    for secret in SECRETS:
        assert secret not in result.reason
    return result


# --- 1.1 device authorization ---------------------------------------------------------


@pytest.mark.asyncio
async def test_device_authorization_sends_the_protocol_fields(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.json(device_json()))
    client = make_client(http_session, oauth_server.url)

    result = await client.request_device_code()

    assert result == DeviceCodeIssued(
        device_code=DEVICE_CODE,
        user_code="WDJB-MJHT",
        verification_uri="https://example.com/device",
        expires_in=900.0,
        interval=5.0,
        verification_uri_complete="https://example.com/device?user_code=WDJB-MJHT",
    )
    [request] = oauth_server.requests
    assert request.path == DEVICE_PATH
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "client_id": "intercom-device",
        "device_type": "camera",
        "device_os": "Linux-6.1-aarch64",
    }


@pytest.mark.asyncio
async def test_client_secret_and_scope_are_sent_only_when_configured(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.json(device_json()))
    oauth_server.then(TOKEN_PATH, oauth_server.json({"error": "authorization_pending"}, 400))
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json()))
    client = make_client(
        http_session,
        oauth_server.url,
        client_secret=CLIENT_SECRET,
        scope="stream read",
        device_type="doorbell",
    )

    await client.request_device_code()
    await client.poll_token(DEVICE_CODE)
    await client.refresh(REFRESH_TOKEN)

    device, poll, refresh = oauth_server.requests
    assert device.form["client_secret"] == CLIENT_SECRET
    assert device.form["scope"] == "stream read"
    assert device.form["device_type"] == "doorbell"
    assert poll.form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": DEVICE_CODE,
        "client_id": "intercom-device",
        "client_secret": CLIENT_SECRET,
    }
    assert refresh.form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "intercom-device",
        "client_secret": CLIENT_SECRET,
    }


@pytest.mark.asyncio
async def test_device_authorization_missing_field_is_named(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.json(device_json(user_code=...)))
    result = await make_client(http_session, oauth_server.url).request_device_code()
    assert_transient(
        result, AuthOperation.DEVICE_AUTHORIZATION, "device authorization", "'user_code'"
    )
    assert "missing field 'user_code'" in result.reason  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_device_authorization_wrong_type_is_named(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.json(device_json(device_code=12345)))
    result = await make_client(http_session, oauth_server.url).request_device_code()
    assert_transient(result, AuthOperation.DEVICE_AUTHORIZATION, "'device_code'", "not a string")


# --- 1.2 polling ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("authorization_pending", AuthorizationPending()),
        ("slow_down", SlowDown()),
        ("access_denied", AccessDenied(description="the person said no")),
        ("expired_token", DeviceCodeExpired()),
    ],
)
async def test_poll_answers_from_the_protocol(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    error: str,
    expected: object,
) -> None:
    body = {"error": error, "error_description": "the person said no"}
    oauth_server.then(TOKEN_PATH, oauth_server.json(body, status=400))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert result == expected


@pytest.mark.asyncio
async def test_poll_approved_gives_the_grant(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json(expires_in=299.5)))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert result == TokensGranted(
        TokenGrant(
            access_token="access-token-AAAA-1111",
            refresh_token=REFRESH_TOKEN,
            expires_in=299.5,
            scope="stream",
        )
    )


@pytest.mark.asyncio
async def test_poll_token_without_refresh_token_is_refused(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json(refresh_token=...)))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    # RFC 8628 section 3.5: the flow ends; polling the same code cannot help.
    assert isinstance(result, DeviceFlowFailed)
    assert result.error == "invalid_token_answer"
    assert "missing field 'refresh_token'" in (result.description or "")


@pytest.mark.asyncio
async def test_poll_server_error_is_transient(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.raw(b"oops", 500, "text/plain"))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert_transient(result, AuthOperation.POLL, "token poll", "500")


@pytest.mark.asyncio
async def test_rate_limit_honours_retry_after(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(
        TOKEN_PATH,
        oauth_server.json({"error": "too_many"}, status=429, headers={"Retry-After": "17"}),
    )
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    transient = assert_transient(result, AuthOperation.POLL, "429", "rate limited")
    assert transient.retry_after == 17.0


@pytest.mark.asyncio
async def test_html_error_page_is_named(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    oauth_server.then(TOKEN_PATH, oauth_server.raw(page, 502, "text/html"))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert_transient(
        result, AuthOperation.POLL, "token endpoint answered 502 with a text/html body"
    )


@pytest.mark.asyncio
async def test_html_with_status_200_is_refused(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(DEVICE_PATH, oauth_server.raw(b"<html>login</html>", 200, "text/html"))
    result = await make_client(http_session, oauth_server.url).request_device_code()
    assert_transient(result, AuthOperation.DEVICE_AUTHORIZATION, "text/html body instead of JSON")


@pytest.mark.asyncio
async def test_non_json_body_is_refused(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.raw(b"\xff\xfe{not json", 200, "application/json"))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert_transient(result, AuthOperation.POLL, "not JSON")


@pytest.mark.asyncio
async def test_hanging_response_times_out(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.hang())
    client = make_client(http_session, oauth_server.url, timeout=0.3)
    started = time.monotonic()
    result = await client.poll_token(DEVICE_CODE)
    assert time.monotonic() - started < 2.0
    assert_transient(result, AuthOperation.POLL, "no answer", "0.3 s")


@pytest.mark.asyncio
async def test_body_that_stalls_times_out(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.hang_mid_body())
    client = make_client(http_session, oauth_server.url, timeout=0.3)
    started = time.monotonic()
    result = await client.refresh(REFRESH_TOKEN)
    assert time.monotonic() - started < 2.0
    assert_transient(result, AuthOperation.REFRESH, "no answer")


@pytest.mark.asyncio
async def test_connection_refused_is_transient(http_session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    client = make_client(http_session, f"http://127.0.0.1:{port}", client_secret=CLIENT_SECRET)
    result = await client.request_device_code()
    assert_transient(result, AuthOperation.DEVICE_AUTHORIZATION, "cannot reach")


@pytest.mark.asyncio
async def test_oversized_body_is_refused(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.raw(b" " * 200_000, 200, "application/json"))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert_transient(result, AuthOperation.POLL, "larger than")


@pytest.mark.asyncio
async def test_redirects_are_not_followed(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(
        TOKEN_PATH,
        oauth_server.raw(b"", 307, "text/plain", headers={"Location": "http://example.com/"}),
    )
    client = make_client(http_session, oauth_server.url, client_secret=CLIENT_SECRET)
    result = await client.refresh(REFRESH_TOKEN)
    assert_transient(result, AuthOperation.REFRESH, "307", "redirects are not followed")
    assert len(oauth_server.requests) == 1


# --- 1.3 refresh ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_refresh_with_rotation_returns_the_new_refresh_token(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    rotated = token_json(access_token="access-2", refresh_token="refresh-rotated-9999")
    oauth_server.then(TOKEN_PATH, oauth_server.json(rotated))
    result = await make_client(http_session, oauth_server.url).refresh(REFRESH_TOKEN)
    assert isinstance(result, TokensRefreshed)
    assert result.grant.access_token == "access-2"
    assert result.grant.refresh_token == "refresh-rotated-9999"


@pytest.mark.asyncio
async def test_refresh_without_rotation_keeps_the_sent_refresh_token(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json(token_json(refresh_token=...)))
    result = await make_client(http_session, oauth_server.url).refresh(REFRESH_TOKEN)
    assert isinstance(result, TokensRefreshed)
    assert result.grant.refresh_token == REFRESH_TOKEN


@pytest.mark.asyncio
async def test_refresh_invalid_grant_is_rejected(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    body = {"error": "invalid_grant", "error_description": "revoked"}
    oauth_server.then(TOKEN_PATH, oauth_server.json(body, status=400))
    result = await make_client(http_session, oauth_server.url).refresh(REFRESH_TOKEN)
    assert result == RefreshRejected(error="invalid_grant", description="revoked")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error"), [(401, "invalid_client"), (400, "unauthorized_client")]
)
async def test_refresh_client_errors_keep_the_tokens(
    oauth_server: ScriptedOAuthServer,
    http_session: aiohttp.ClientSession,
    status: int,
    error: str,
) -> None:
    oauth_server.then(TOKEN_PATH, oauth_server.json({"error": error}, status=status))
    result = await make_client(http_session, oauth_server.url).refresh(REFRESH_TOKEN)
    # Not RefreshRejected: the grant may be good once the client is fixed.
    assert result == ClientRejected(AuthOperation.REFRESH, error)


@pytest.mark.asyncio
async def test_refresh_server_error_is_transient(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    oauth_server.then(
        TOKEN_PATH, oauth_server.raw(b"busy", 503, "text/plain", headers={"Retry-After": "5"})
    )
    result = await make_client(http_session, oauth_server.url).refresh(REFRESH_TOKEN)
    assert assert_transient(result, AuthOperation.REFRESH, "503").retry_after == 5.0


@pytest.mark.asyncio
async def test_secrets_the_server_echoes_are_redacted(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    body = {"error": "invalid_request", "error_description": f"bad token {REFRESH_TOKEN}"}
    oauth_server.then(TOKEN_PATH, oauth_server.json(body, status=400))
    client = make_client(http_session, oauth_server.url, client_secret=CLIENT_SECRET)
    result = await client.refresh(REFRESH_TOKEN)
    assert_transient(result, AuthOperation.REFRESH, "invalid_request", "[redacted]")


# --- Transport security -------------------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        AuthSettings(http_base_url="http://auth.example.com", client_id="x")
    allowed = AuthSettings(
        http_base_url="http://auth.example.com/", client_id="x", allow_insecure_transport=True
    )
    assert allowed.http_base_url == "http://auth.example.com"


@pytest.mark.asyncio
async def test_untrusted_tls_certificate_is_refused(
    http_session: aiohttp.ClientSession, self_signed_https_url: str
) -> None:
    client = AuthClient(
        http_session, AuthSettings(http_base_url=self_signed_https_url, client_id="x", timeout=2)
    )
    result = await client.request_device_code()
    assert_transient(result, AuthOperation.DEVICE_AUTHORIZATION, "certificate")


@pytest.mark.asyncio
async def test_echoed_secrets_in_descriptions_are_redacted(
    oauth_server: ScriptedOAuthServer, http_session: aiohttp.ClientSession
) -> None:
    echo = {"error": "access_denied", "error_description": f"denied {DEVICE_CODE}"}
    oauth_server.then(TOKEN_PATH, oauth_server.json(echo, status=400))
    result = await make_client(http_session, oauth_server.url).poll_token(DEVICE_CODE)
    assert result == AccessDenied(description="denied [redacted]")
