"""What the sandbox is asked to be: the command line's settings, and the URLs it serves.

Plain Python (no Django), so the command line and the tests can build these
without loading the server stack.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEMO_USERNAME = "demo"
SANDBOX_INFO_FILE = "sandbox.json"
OAUTH_CLIENT_FILE = "oauth.json"
LOG_FILE = "sandbox.log"
CONTROL_PATH = "/sandbox/control/"
VERIFICATION_PATH = "/device/"


@dataclass(frozen=True)
class SandboxOptions:
    """Everything ``intercom-fsm sandbox`` can be told on its command line."""

    host: str = "127.0.0.1"
    port: int = 8000
    state_dir: Path | None = None
    public_client: bool = False
    auto_approve: bool = False
    device_interval: int = 5
    device_expires_in: int = 600
    access_token_lifetime: int = 3600
    test_controls: bool = False


@dataclass(frozen=True)
class SandboxUrls:
    """The addresses a device, a person and a test use to reach the running sandbox."""

    http_base_url: str
    ws_base_url: str

    @classmethod
    def for_address(cls, host: str, port: int) -> SandboxUrls:
        authority = f"{_reachable_host(host)}:{port}"
        return cls(http_base_url=f"http://{authority}", ws_base_url=f"ws://{authority}")

    @property
    def viewer_url(self) -> str:
        return f"{self.http_base_url}/"

    @property
    def verification_uri(self) -> str:
        return f"{self.http_base_url}{VERIFICATION_PATH}"

    @property
    def control_url(self) -> str:
        return f"{self.http_base_url}{CONTROL_PATH}"


def _reachable_host(host: str) -> str:
    """The host part of a URL that reaches a socket bound to ``host``.

    A wildcard bind is reachable on loopback from this machine, which is where
    the printed URLs are most likely used; IPv6 literals need brackets.
    """
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[{host}]" if address.version == 6 else host
