"""``intercom-fsm demo``: the sandbox backend and the daemon on one machine.

The sandbox runs as a subprocess on 127.0.0.1; the daemon runs here, streaming
the built-in test pattern, with its tokens in the sandbox's state directory
(the demo never touches the real token file).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from intercom_fsm.config import load_config
from intercom_fsm.daemon.app import run_daemon
from intercom_fsm.daemon.logs import configure
from intercom_fsm.sandbox.process import SandboxInfo, SandboxProcess


def demo_environment(info: SandboxInfo, state_dir: Path) -> dict[str, str]:
    """The daemon's settings for a running sandbox."""
    return {
        "HTTP_API_BASE_URL": info.http_base_url,
        "WEBSOCKET_API_BASE_URL": info.ws_base_url,
        "OAUTH_CLIENT_ID": info.client_id,
        "OAUTH_CLIENT_SECRET": info.client_secret or "",
        "TOKEN_FILE_PATH": str(state_dir / "device" / "tokens.json"),
        "VIDEO_SOURCE": "testsrc",
        "VIDEO_WIDTH": "640",
        "VIDEO_HEIGHT": "480",
        "VIDEO_FPS": "15",
        # A test tone at the door; the viewers' voices have no speaker here.
        "AUDIO_SOURCE": "tone",
        "AUDIO_SINK": "none",
        "BACKOFF_BASE_SECONDS": "0.5",
        "BACKOFF_CAP_SECONDS": "5",
    }


def run_demo(*, port: int, auto_approve: bool, duration: float | None, log_format: str) -> int:
    sandbox = SandboxProcess(
        auto_approve=auto_approve, test_controls=False, extra_args=("--port", str(port))
    )
    info = sandbox.start()
    try:
        config = load_config(demo_environment(info, sandbox.state_dir), oauth_file=None)
        secrets = configure(config.logging.level, log_format == "json")
        print(
            "\n".join(
                [
                    "",
                    "intercom-fsm demo",
                    f"  viewer page:  {info.viewer_url}",
                    f"  sign in as:   {info.username} / {info.password}",
                    "  then approve the device with the code shown below"
                    + (" (auto-approved here)" if auto_approve else "")
                    + " and click it to watch.",
                    "  Ctrl-C stops the demo.",
                    "",
                ]
            ),
            file=sys.stderr,
        )
        return asyncio.run(run_daemon(config, secrets, stop_after=duration))
    finally:
        sandbox.stop()
