"""Every setting with a wrong value stops ``intercom-fsm run`` with exit code
2 and a message naming the variable (no sandbox needed: it never gets as far
as the network); plain http/ws to a host other than loopback is refused
unless ALLOW_INSECURE_TRANSPORT=1 says the operator accepts the risk."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.daemon_process import ROOT
from tests.waiting import wait_until

pytestmark = [pytest.mark.timeout(120)]

GOOD = {
    "HTTP_API_BASE_URL": "http://127.0.0.1:9",
    "WEBSOCKET_API_BASE_URL": "ws://127.0.0.1:9",
    "OAUTH_CLIENT_ID": "client",
    "OAUTH_CLIENT_SECRET": "secret",
    "VIDEO_SOURCE": "testsrc",
    "LOG_FORMAT": "json",
}

BAD: list[tuple[str, str]] = [
    ("HTTP_API_BASE_URL", "ftp://127.0.0.1"),
    ("HTTP_API_BASE_URL", "not a url"),
    ("WEBSOCKET_API_BASE_URL", "http://127.0.0.1:9"),
    ("ALLOW_INSECURE_TRANSPORT", "perhaps"),
    ("OAUTH_CLIENT_ID", "caméra-client"),
    ("OAUTH_CLIENT_SECRET", "s3cr3t\tvalue"),
    ("OAUTH_SCOPE", "bad\u00e9scope"),
    ("DEVICE_TYPE", "caméra"),
    ("DEVICE_OS", "os\u0007"),
    ("TOKEN_FILE_PATH", "/tmp/"),
    ("VIDEO_SOURCE", "ftp://camera.example/stream"),
    ("VIDEO_WIDTH", "321"),
    ("VIDEO_WIDTH", "wide"),
    ("VIDEO_HEIGHT", "8"),
    ("VIDEO_FPS", "0"),
    ("VIDEO_FPS", "fast"),
    ("VIDEO_CODEC", "mpeg2"),
    ("VIDEO_BITRATE", "12"),
    ("ICE_SERVERS", "[{"),
    ("ICE_SERVERS", "http://stun.example"),
    ("MAX_VIEWERS", "0"),
    ("MAX_VIEWERS", "33"),
    ("BACKOFF_BASE_SECONDS", "-1"),
    ("BACKOFF_CAP_SECONDS", "0.1"),
    ("HTTP_TIMEOUT_SECONDS", "1000"),
    ("LOG_LEVEL", "LOUD"),
    ("LOG_FORMAT", "xml"),
]


def run(environ: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercom_fsm", "run"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".no-home"), **environ},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_every_wrong_setting_exits_2_naming_it() -> None:
    def attempt(case: tuple[str, str]) -> tuple[str, str, subprocess.CompletedProcess[str]]:
        name, value = case
        return name, value, run({**GOOD, name: value}, timeout=15)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, BAD))
    wrong = [
        (name, value, result.returncode, result.stderr[-300:])
        for name, value, result in results
        if result.returncode != 2 or name not in result.stderr
    ]
    assert not wrong, wrong
    # A secret's wrong value is named but never echoed.
    secret = next(r for n, _v, r in results if n == "OAUTH_CLIENT_SECRET")
    assert "s3cr3t" not in secret.stderr


@pytest.mark.parametrize(
    ("http", "ws"),
    [
        ("http://camera-backend.example", "wss://camera-backend.example"),
        ("https://camera-backend.example", "ws://camera-backend.example"),
    ],
)
def test_plain_transport_to_a_remote_host_is_refused(http: str, ws: str) -> None:
    result = run({**GOOD, "HTTP_API_BASE_URL": http, "WEBSOCKET_API_BASE_URL": ws})
    assert result.returncode == 2
    assert "ALLOW_INSECURE_TRANSPORT" in result.stderr
    name = "HTTP_API_BASE_URL" if http.startswith("http:") else "WEBSOCKET_API_BASE_URL"
    assert name in result.stderr


def test_plain_transport_allowed_only_when_the_operator_says_so(tmp_path: Path) -> None:
    environ = {
        **GOOD,
        "HTTP_API_BASE_URL": "http://camera-backend.invalid",
        "WEBSOCKET_API_BASE_URL": "ws://camera-backend.invalid",
        "ALLOW_INSECURE_TRANSPORT": "1",
        "TOKEN_FILE_PATH": str(tmp_path / "tokens.json"),
        "BACKOFF_BASE_SECONDS": "0.2",
        "BACKOFF_CAP_SECONDS": "1",
    }
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "intercom_fsm", "run"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **environ},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    unreachable = "cannot reach the device authorization endpoint"
    try:
        # Two attempts, a backoff apart: it runs and retries with the override.
        wait_until(lambda: log_path.read_text().count(unreachable) >= 2, 20, "a second attempt")
        assert process.poll() is None, "the daemon should run (and retry) with the override"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "configuration error" not in log_path.read_text()
