"""``intercom-fsm login`` when the server says no: a rejected client exits at
once with its own code (3), and a device flow the server ends is said plainly.
The login runs as a subprocess, against the sandbox or a scripted OAuth
server on loopback."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from intercom_fsm.daemon.exit_codes import EXIT_CLIENT_REJECTED
from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess, daemon_environment

pytestmark = pytest.mark.timeout(60)


def test_a_client_with_a_wrong_secret_ends_login_with_its_own_exit_code(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    environ = daemon_environment(
        sandbox.info, tmp_path / "tokens.json", OAUTH_CLIENT_SECRET="not-the-secret-0000"
    )
    login = DaemonProcess(environ, tmp_path / "login.log", argv=("login",)).start()
    try:
        assert login.process is not None
        assert login.process.wait(timeout=30) == EXIT_CLIENT_REJECTED
    finally:
        login.stop()
    said = login.text()
    assert "the server rejects this client (invalid_client" in said
    assert "check OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET" in said


class EndsEveryFlow(BaseHTTPRequestHandler):
    """Issues device codes; answers every poll with invalid_grant."""

    server: ThreadingHTTPServer
    """The server ``flow_ender`` serves this handler from (the base class only
    knows it as a ``BaseServer``, which has no ``server_port``)."""
    device_authorizations = 0
    polls: ClassVar[list[str]] = []
    """The device code of every token request, in order."""

    def do_POST(self) -> None:
        form = urllib.parse.parse_qs(
            self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        )
        if self.path != "/oauth/device-authorization/":
            type(self).polls += form.get("device_code", [""])
        if self.path == "/oauth/device-authorization/":
            type(self).device_authorizations += 1
            status, body = (
                200,
                {
                    "device_code": f"device-code-{self.device_authorizations}-0123456789",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": f"http://127.0.0.1:{self.server.server_port}/device/",
                    "expires_in": 600,
                    "interval": 1,
                },
            )
        else:
            status, body = 400, {"error": "invalid_grant", "error_description": "unknown code"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def flow_ender() -> Iterator[ThreadingHTTPServer]:
    EndsEveryFlow.device_authorizations = 0
    EndsEveryFlow.polls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndsEveryFlow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def login_against(server: ThreadingHTTPServer, tmp_path: Path) -> DaemonProcess:
    base = f"http://127.0.0.1:{server.server_port}"
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OAUTH_", "HTTP_API", "WEBSOCKET_API", "TOKEN_FILE"))
    }
    environ.update(
        HTTP_API_BASE_URL=base,
        WEBSOCKET_API_BASE_URL=base.replace("http://", "ws://"),
        OAUTH_CLIENT_ID="intercom-device",
        TOKEN_FILE_PATH=str(tmp_path / "tokens.json"),
        BACKOFF_BASE_SECONDS="0.2",
        BACKOFF_CAP_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    return DaemonProcess(environ, tmp_path / "login.log", argv=("login",)).start()


def test_a_flow_the_server_ends_is_said_plainly(
    flow_ender: ThreadingHTTPServer, tmp_path: Path
) -> None:
    login = login_against(flow_ender, tmp_path)
    try:
        login.wait_until(
            lambda d: "the server ended this device flow (invalid_grant: unknown code)" in d.text(),
            20,
            "the report of the ended flow",
        )
        assert login.process is not None and login.process.poll() is None, "login gave up"
        assert not (tmp_path / "tokens.json").exists()
    finally:
        login.stop()


def test_after_a_flow_the_server_ends_login_asks_for_a_new_code(
    flow_ender: ThreadingHTTPServer, tmp_path: Path
) -> None:
    login = login_against(flow_ender, tmp_path)
    try:
        login.wait_until(
            lambda _d: EndsEveryFlow.device_authorizations >= 2, 15, "a second device code"
        )
        # RFC 8628 section 3.5: an ended flow's code is never polled again.
        first = "device-code-1-0123456789"
        assert EndsEveryFlow.polls.count(first) == 1, EndsEveryFlow.polls
    finally:
        login.stop()
