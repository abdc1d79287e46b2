"""The reliability suite's guard: once the session ends, everything every
daemon of these tests printed is searched for every real secret those runs
handled (access and refresh tokens the sandboxes issued, read from their
databases, device codes, the client secret). A secret found fails the session,
whichever tests ran and in whatever order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.helpers import LOGS, SECRETS

MIN_SECRET_CHARS = 8
"""Shorter values (test passwords) would match ordinary words."""


def leaked_secrets() -> list[tuple[str, str]]:
    """``(log file, secret's first characters)`` for each secret found."""
    secrets = {secret for secret in SECRETS if len(secret) >= MIN_SECRET_CHARS}
    logs = [path for path in LOGS if path.exists()]
    if logs and not secrets:
        pytest.fail("daemons ran but no secret was collected to search their logs for")
    leaks: list[tuple[str, str]] = []
    for path in logs:
        text = path.read_text(errors="replace")
        leaks += [(str(path), secret[:4] + "…") for secret in secrets if secret in text]
    return leaks


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_daemon_output() -> Iterator[None]:
    yield
    leaks = leaked_secrets()
    if leaks:
        pytest.fail(f"secrets in daemon output: {leaks}")
