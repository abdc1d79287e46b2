"""One sandbox process: state directory, Django, the database, then daphne until a signal.

Once it serves, it prints its URLs and credentials and writes them to
``<state_dir>/sandbox.json`` (0600), which tools wait for; the file is removed
again when the sandbox stops.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from intercom_fsm.sandbox.files import write_private_json
from intercom_fsm.sandbox.options import SANDBOX_INFO_FILE, SandboxOptions, SandboxUrls

logger = logging.getLogger(__name__)

EXIT_NO_LISTEN = 1


class StopRequested(Exception):
    """SIGTERM arrived before the server was up."""


@dataclass(frozen=True)
class Announcement:
    urls: SandboxUrls
    client_id: str
    client_secret: str | None
    username: str
    password: str
    state_dir: Path
    temporary: bool
    test_controls: bool

    def as_json(self, pid: int) -> dict[str, Any]:
        return {
            "http_base_url": self.urls.http_base_url,
            "ws_base_url": self.urls.ws_base_url,
            "viewer_url": self.urls.viewer_url,
            "verification_uri": self.urls.verification_uri,
            "control_url": self.urls.control_url if self.test_controls else None,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": self.username,
            "password": self.password,
            "state_dir": str(self.state_dir),
            "pid": pid,
        }

    def text(self) -> str:
        secret = self.client_secret if self.client_secret is not None else "(public client: none)"
        removal = " (removed on exit)" if self.temporary else ""
        lines = [
            "",
            "intercom sandbox is running (Ctrl-C stops it)",
            f"  HTTP_API_BASE_URL       {self.urls.http_base_url}",
            f"  WEBSOCKET_API_BASE_URL  {self.urls.ws_base_url}",
            f"  OAUTH_CLIENT_ID         {self.client_id}",
            f"  OAUTH_CLIENT_SECRET     {secret}",
            f"  viewer page             {self.urls.viewer_url}",
            f"  sign in as              {self.username} / {self.password}",
            f"  approve devices at      {self.urls.verification_uri}",
            f"  state directory         {self.state_dir}{removal}",
        ]
        if self.test_controls:
            lines.append(f"  control API             {self.urls.control_url}")
        return "\n".join([*lines, ""])


def _state_dir(chosen: Path | None) -> tuple[Path, bool]:
    if chosen is None:
        return Path(tempfile.mkdtemp(prefix="intercom-sandbox-")), True
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen.resolve(), False


def _secret_key(state_dir: Path) -> str:
    """Kept in the state directory so that sign-ins survive a restart."""
    path = state_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(key, encoding="utf-8")
    return key


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise StopRequested


def run(options: SandboxOptions) -> int:
    """Serve until SIGINT or SIGTERM; 0 when stopped by either."""
    previous_handler = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    state_dir, temporary = _state_dir(options.state_dir)
    info_path = state_dir / SANDBOX_INFO_FILE
    info_path.unlink(missing_ok=True)
    try:
        return _serve(options, state_dir, info_path, temporary=temporary)
    except (KeyboardInterrupt, StopRequested):
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        info_path.unlink(missing_ok=True)
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)


def _serve(options: SandboxOptions, state_dir: Path, info_path: Path, *, temporary: bool) -> int:
    from intercom_fsm.sandbox import daphne_runner
    from intercom_fsm.sandbox.settings import configure_django

    configure_django(options, state_dir=state_dir, secret_key=_secret_key(state_dir))
    from intercom_fsm.sandbox import bootstrap
    from intercom_fsm.sandbox.backend import site
    from intercom_fsm.sandbox.backend.routing import build_application

    bootstrap.create_tables()
    user = bootstrap.reset_demo_user()
    client = bootstrap.device_application(state_dir, public=options.public_client)

    def on_listening(port: int) -> Callable[[], None]:
        urls = SandboxUrls.for_address(options.host, port)
        site.publish(urls)
        announcement = Announcement(
            urls=urls,
            client_id=client.client_id,
            client_secret=client.client_secret,
            username=user.username,
            password=user.password,
            state_dir=state_dir,
            temporary=temporary,
            test_controls=options.test_controls,
        )

        def announce() -> None:
            print(announcement.text(), flush=True)
            write_private_json(info_path, announcement.as_json(pid=os.getpid()))

        return announce

    if not daphne_runner.serve(build_application(), options.host, options.port, on_listening):
        logger.error("could not listen on %s port %s", options.host, options.port)
        return EXIT_NO_LISTEN
    logger.info("sandbox stopped")
    return 0
