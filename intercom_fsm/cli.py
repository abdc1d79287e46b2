"""The ``intercom-fsm`` command line.

Heavy modules (aiortc, OpenCV, Django) are imported inside the commands that
need them, so that ``--help`` and ``diagram`` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from intercom_fsm._version import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


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
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files in --output differ from the machine",
    )
    diagram.set_defaults(handler=_diagram)

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
            for source in diagram.DIAGRAMS
            if not (path := args.output / f"{source.name}.mmd").exists()
            or path.read_text() != diagram.mermaid(source)
        ]
        for path in stale:
            print(f"{path} differs from the machine: run 'intercom-fsm diagram'", file=sys.stderr)
        return EXIT_FAILURE if stale else EXIT_OK
    for path in diagram.write_diagrams(args.output, current=args.state):
        print(path)
    if not diagram.graphviz_available():
        print("(no SVG: Graphviz's 'dot' or the 'graphviz' package is missing)", file=sys.stderr)
    return EXIT_OK


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
