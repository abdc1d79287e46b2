"""The ``intercom-fsm`` command line.

Heavy modules (aiortc, OpenCV, Django) are imported inside the commands that
need them, so that ``--help`` and ``diagram`` start quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from intercom_fsm._version import __version__

if TYPE_CHECKING:
    from intercom_fsm.config import Config
    from intercom_fsm.redact import RedactingFilter

from intercom_fsm.daemon.exit_codes import EXIT_FAILURE, EXIT_LOCKED, EXIT_OK, EXIT_USAGE


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intercom-fsm",
        description="Device-side client of an intercom camera: streams a camera to viewers "
        "over WebRTC, driven by an explicit lifecycle state machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    diagram = commands.add_parser(
        "diagram", help="export the lifecycle and session diagrams from the machine itself"
    )
    diagram.add_argument(
        "--output", type=Path, default=Path("diagrams"), help="directory (default: diagrams/)"
    )
    diagram.add_argument(
        "--state", help="highlight this state (writes <machine>-<state>.mmd beside the others)"
    )
    diagram.add_argument(
        "--live",
        action="store_true",
        help="highlight the running daemon's state (asked from HEALTH_ADDRESS)",
    )
    diagram.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files in --output differ from the machine",
    )
    diagram.set_defaults(handler=_diagram)

    run = commands.add_parser("run", help="run the daemon: sign in, connect, stream")
    run.set_defaults(handler=_run)
    login = commands.add_parser(
        "login", help="run the device flow only; exit once tokens are stored"
    )
    login.set_defaults(handler=_login)
    logout = commands.add_parser("logout", help="forget the stored tokens")
    logout.set_defaults(handler=_logout)
    status = commands.add_parser(
        "status", help="show authorization, token expiry and the configured endpoints"
    )
    status.set_defaults(handler=_status)
    for command in (run, login, logout, status):
        command.add_argument("--log-format", choices=("text", "json"), help="overrides LOG_FORMAT")

    demo = commands.add_parser(
        "demo", help="start the sandbox backend and the daemon streaming a test pattern"
    )
    demo.add_argument("--port", type=int, default=8000, help="sandbox port (default 8000)")
    demo.add_argument(
        "--auto-approve", action="store_true", help="approve the device without the page"
    )
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--log-format", choices=("text", "json"), default="text")
    demo.set_defaults(handler=_demo)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the bundled sandbox backend (needs the 'sandbox' extra)",
        add_help=False,
    )
    sandbox.set_defaults(handler=_sandbox)
    return parser


def _diagram(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    from intercom_fsm import diagram

    if args.check:
        stale = [
            path
            for path, text in diagram.expected_files(args.output).items()
            if not path.exists() or path.read_text() != text
        ]
        for path in stale:
            print(f"{path} differs from the machine: run 'intercom-fsm diagram'", file=sys.stderr)
        return EXIT_FAILURE if stale else EXIT_OK
    state = args.state
    if args.live:
        state = _live_state()
        if state is None:
            return EXIT_FAILURE
    for path in diagram.write_diagrams(args.output, current=state):
        print(path)
    if not diagram.graphviz_available():
        print("(no SVG: Graphviz's 'dot' or the 'graphviz' package is missing)", file=sys.stderr)
    return EXIT_OK


def _load_config(args: argparse.Namespace) -> Config:
    """The configuration from the environment; exits 2 naming the variable
    when a value is wrong."""
    from intercom_fsm.config import ConfigError, load_config

    environ = dict(os.environ)
    if getattr(args, "log_format", None):
        environ["LOG_FORMAT"] = args.log_format
    try:
        return load_config(environ, validate_video_source=_video_source_validator())
    except ConfigError as error:
        print(f"intercom-fsm: configuration error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _video_source_validator() -> Callable[[str], object] | None:
    try:
        from intercom_fsm.adapters.camera import parse_video_source
    except ImportError:
        return None
    return parse_video_source


def _start_logging(config: Config) -> RedactingFilter:
    from intercom_fsm.config import LogFormat
    from intercom_fsm.daemon.logs import configure

    return configure(config.logging.level, config.logging.format is LogFormat.JSON)


@contextlib.contextmanager
def _token_file_held(config: Config) -> Iterator[None]:
    """The token file's lock for as long as the command runs; exits with
    EXIT_LOCKED, naming the holder, when another process has it. A lock that
    cannot be made at all (a read-only directory) is logged, not fatal: the
    tokens cannot be written there either, and the daemon runs on them."""
    from intercom_fsm.adapters.token_lock import TokenFileLocked, TokenLock, TokenLockError

    lock = TokenLock(config.token_file)
    try:
        lock.acquire()
    except TokenFileLocked as error:
        print(f"intercom-fsm: {error}", file=sys.stderr)
        raise SystemExit(EXIT_LOCKED) from None
    except TokenLockError as error:
        logging.getLogger(__name__).warning("running without the token file's lock: %s", error)
    try:
        yield
    finally:
        lock.release()


def _run(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    from intercom_fsm.daemon.app import run_daemon

    config = _load_config(args)
    secrets = _start_logging(config)
    with _token_file_held(config):
        return asyncio.run(run_daemon(config, secrets))


def _login(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    from intercom_fsm.daemon.login import login_only

    config = _load_config(args)
    secrets = _start_logging(config)
    with _token_file_held(config):
        return asyncio.run(login_only(config, secrets))


def _logout(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    from intercom_fsm.adapters.token_store import TokenStore, TokenStoreError

    config = _load_config(args)
    with _token_file_held(config):
        try:
            removed = TokenStore(config.token_file).clear()
        except TokenStoreError as error:
            print(f"intercom-fsm: {error}", file=sys.stderr)
            return EXIT_FAILURE
    print(f"tokens {'removed from' if removed else 'were not stored in'} {config.token_file}")
    return EXIT_OK


def _status(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    from intercom_fsm.adapters.token_store import TokenStore
    from intercom_fsm.daemon.status_client import describe_live_daemon
    from intercom_fsm.redact import fingerprint

    config = _load_config(args)
    loaded = TokenStore(config.token_file).load()
    print(f"HTTP API:        {config.endpoints.http_base_url}")
    print(f"WebSocket API:   {config.endpoints.websocket_base_url}")
    print(f"client id:       {config.oauth.client_id}")
    print(f"token file:      {config.token_file}")
    print(f"daemon:          {describe_live_daemon(os.environ)}")
    if loaded.problem:
        print(f"authorized:      no ({loaded.problem})")
        return EXIT_FAILURE
    if loaded.tokens is None:
        print("authorized:      no (run 'intercom-fsm login' or 'intercom-fsm run')")
        return EXIT_FAILURE
    remaining = loaded.tokens.expires_at - time.time()
    expiry = _local_time(loaded.tokens.expires_at)
    state = f"in {remaining / 60:.0f} min" if remaining > 0 else "expired: refreshed on start"
    print(f"authorized:      yes (stream {fingerprint(loaded.tokens.device_code)})")
    print(f"access token:    expires {expiry} ({state})")
    return EXIT_OK


def _local_time(seconds: float) -> str:
    """A stored expiry as a local date; a number no calendar holds is said so."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(seconds))
    except (OverflowError, ValueError, OSError):
        return "at a time that is not a date"


def _demo(args: argparse.Namespace, _rest: Sequence[str]) -> int:
    try:
        from intercom_fsm.daemon.demo import run_demo
    except ImportError as error:
        print(f"the demo needs the 'sandbox' extra: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run_demo(
        port=args.port,
        auto_approve=args.auto_approve,
        duration=args.duration,
        log_format=args.log_format,
    )


def _live_state() -> str | None:
    from intercom_fsm.config import ConfigError, load_health_settings
    from intercom_fsm.daemon.status_client import fetch_live_status

    try:
        address = load_health_settings(os.environ).address
    except ConfigError as error:
        print(f"intercom-fsm: configuration error: {error}", file=sys.stderr)
        return None
    if address is None:
        print("no live daemon to ask: set HEALTH_ADDRESS", file=sys.stderr)
        return None
    status = fetch_live_status(address)
    if status.state is None:
        print(f"the daemon's state is unknown: {status.describe()}", file=sys.stderr)
    return status.state


def _sandbox(_args: argparse.Namespace, rest: Sequence[str]) -> int:
    # An optional extra: imported by name so the core never depends on Django.
    try:
        sandbox_main = importlib.import_module("intercom_fsm.sandbox.cli").main
    except ImportError as error:
        print(
            f"the sandbox needs the 'sandbox' extra (pip install 'intercom-fsm[sandbox]'): {error}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    exit_code: int = sandbox_main(list(rest))
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "sandbox":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    result: int = args.handler(args, rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
