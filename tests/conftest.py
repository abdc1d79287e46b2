"""Markers by folder: every folder whose tests start processes or servers
(the sandbox, the daemon, HTTP and WebSocket servers on loopback, aiortc peers,
subprocesses) is ``e2e``; only the folders named in :data:`FAST_FOLDERS` are
pure, so ``pytest -m "not e2e and not browser"`` is the fast loop. A new
folder is ``e2e`` until it is listed here."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

FAST_FOLDERS = frozenset({"config", "daemon", "docs", "machine", "property"})
"""No process, no server, no socket: the machine, the runtime with in-process
adapters, the settings, the README."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/
            continue
        if folder not in FAST_FOLDERS:
            item.add_marker(pytest.mark.e2e)
