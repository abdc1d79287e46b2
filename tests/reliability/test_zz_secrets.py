"""Runs last (file order): everything every daemon of the reliability tests
printed is searched for every real secret those runs handled: access and
refresh tokens (all the sandboxes ever issued, read from their databases),
device codes, and the client secret."""

from __future__ import annotations

import pytest

from tests.reliability.helpers import LOGS, SECRETS


def test_no_secret_in_any_daemon_output() -> None:
    logs = [path for path in LOGS if path.exists()]
    if not logs:
        pytest.skip("no daemon ran in this session (run the whole tests/reliability)")
    secrets = {secret for secret in SECRETS if len(secret) >= 8}
    assert len(secrets) >= 10, "the collector should have found the runs' tokens"
    leaks = []
    total = 0
    for path in logs:
        text = path.read_text(errors="replace")
        total += len(text)
        leaks += [(path.name, secret[:4] + "…") for secret in secrets if secret in text]
    assert total > 100_000, "the logs should hold the whole runs"
    assert not leaks, leaks
