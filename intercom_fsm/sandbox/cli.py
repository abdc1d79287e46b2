"""The sandbox's command line: ``intercom-fsm sandbox`` or ``python -m intercom_fsm.sandbox``.

Parsing needs no Django; the server stack is imported only when it runs.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from intercom_fsm.sandbox.options import SandboxOptions

EXIT_FAILURE = 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = SandboxOptions()
    parser = argparse.ArgumentParser(
        prog="intercom-fsm sandbox",
        description="A local intercom backend (OAuth device flow, signaling WebSockets and a "
        "monitor page) to develop, demo and test the client against.",
    )
    parser.add_argument("--host", default=defaults.host, help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port", type=_port, default=defaults.port, help="port (%(default)s; 0 picks a free one)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="directory for the SQLite database and the written credentials "
        "(default: a new temporary directory, removed on exit)",
    )
    parser.add_argument(
        "--public-client",
        action="store_true",
        help="make the devices' OAuth client public (no secret) instead of confidential",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="approve every device flow as the demo user about a second after it starts",
    )
    parser.add_argument(
        "--device-interval",
        type=_positive,
        default=defaults.device_interval,
        metavar="SECONDS",
        help="polling interval given to devices (%(default)s)",
    )
    parser.add_argument(
        "--device-expires-in",
        type=_positive,
        default=defaults.device_expires_in,
        metavar="SECONDS",
        help="lifetime of a device code (%(default)s)",
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=_positive,
        default=defaults.access_token_lifetime,
        metavar="SECONDS",
        help="lifetime of an access token (%(default)s)",
    )
    parser.add_argument(
        "--test-controls",
        action="store_true",
        help="serve the control API under /sandbox/control/ (for end-to-end tests)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = SandboxOptions(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        public_client=args.public_client,
        auto_approve=args.auto_approve,
        device_interval=args.device_interval,
        device_expires_in=args.device_expires_in,
        access_token_lifetime=args.access_token_lifetime,
        test_controls=args.test_controls,
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # daphne's start-up notices (HTTP/2 support, endpoints) would bury the URL block.
    logging.getLogger("daphne").setLevel(logging.WARNING)
    from intercom_fsm.sandbox import server

    try:
        return server.run(options)
    except OSError as error:
        logging.getLogger(__name__).error("the sandbox could not start: %s", error)
        return EXIT_FAILURE
