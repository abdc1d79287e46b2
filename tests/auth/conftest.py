"""A scripted OAuth server on 127.0.0.1 for the auth adapter's tests.

Each test queues the answers the endpoints give, in order; the server records
every request's path and form so the test can check what the client sent.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web

from intercom_fsm.adapters.auth import AuthClient, AuthSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEVICE_PATH = "/oauth/device-authorization/"
TOKEN_PATH = "/oauth/token/"
CLIENT_SECRET = "client-secret-never-logged-0123"


@attrs.define
class RecordedRequest:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@attrs.define
class ScriptedOAuthServer:
    url: str = ""
    requests: list[RecordedRequest] = attrs.field(factory=list)
    released: asyncio.Event = attrs.field(factory=asyncio.Event)
    _script: defaultdict[str, deque[Handler]] = attrs.field(factory=lambda: defaultdict(deque))

    def then(self, path: str, *handlers: Handler) -> None:
        """Queue answers for ``path``, one per request."""
        self._script[path].extend(handlers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        self.requests.append(
            RecordedRequest(
                path=request.path,
                form={key: str(value) for key, value in form.items()},
                headers=dict(request.headers),
            )
        )
        queue = self._script[request.path]
        if not queue:
            return web.json_response({"error": "unscripted"}, status=599)
        return await queue.popleft()(request)

    # --- answers ---------------------------------------------------------------

    @staticmethod
    def json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
        async def answer(_request: web.Request) -> web.StreamResponse:
            return web.json_response(document, status=status, headers=headers)

        return answer

    @staticmethod
    def raw(
        body: bytes, status: int, content_type: str, headers: dict[str, str] | None = None
    ) -> Handler:
        async def answer(_request: web.Request) -> web.StreamResponse:
            response = web.Response(body=body, status=status, headers=headers)
            response.content_type = content_type
            return response

        return answer

    def hang(self) -> Handler:
        """Never answer (until the fixture tears down)."""

        async def answer(_request: web.Request) -> web.StreamResponse:
            await self.released.wait()
            return web.Response(status=204)

        return answer

    def hang_mid_body(self) -> Handler:
        """Send the headers and part of a JSON body, then stall."""

        async def answer(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(status=200)
            response.content_type = "application/json"
            await response.prepare(request)
            await response.write(b'{"access_token": "')
            await self.released.wait()
            return response

        return answer


@pytest_asyncio.fixture
async def oauth_server() -> AsyncIterator[ScriptedOAuthServer]:
    server = ScriptedOAuthServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        server.released.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(session: aiohttp.ClientSession, base_url: str, **overrides: Any) -> AuthClient:
    settings: dict[str, Any] = {
        "http_base_url": base_url,
        "client_id": "intercom-device",
        "client_secret": None,
        "timeout": 2.0,
        "device_os": "Linux-6.1-aarch64",
    }
    settings.update(overrides)
    return AuthClient(session, AuthSettings(**settings))


def token_json(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "access_token": "access-token-AAAA-1111",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "refresh-token-RRRR-2222",
        "scope": "stream",
    }
    document.update(overrides)
    return {key: value for key, value in document.items() if value is not ...}


def device_json(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "device_code": "device-code-DDDD-3333",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://example.com/device",
        "verification_uri_complete": "https://example.com/device?user_code=WDJB-MJHT",
        "expires_in": 900,
        "interval": 5,
    }
    document.update(overrides)
    return {key: value for key, value in document.items() if value is not ...}


def dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


def _write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store knows."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest_asyncio.fixture
async def self_signed_https_url(tmp_path: Path) -> AsyncIterator[str]:
    pytest.importorskip("cryptography")
    cert_path, key_path = _write_self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    app = web.Application()
    app.router.add_post("/{tail:.*}", ScriptedOAuthServer.json(device_json()))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
