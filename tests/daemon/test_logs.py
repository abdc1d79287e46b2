"""What reaches the log stream: every secret scrubbed, in text and JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from intercom_fsm.daemon.logs import configure

SECRET = "refresh-token-in-an-exception-4471"


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def fail_with_the_secret() -> None:
    raise RuntimeError(f"the server echoed refresh_token={SECRET}")


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "text"])
def test_an_exception_carrying_a_secret_is_logged_redacted(json_lines: bool) -> None:
    stream = io.StringIO()
    secrets = configure("INFO", json_lines, stream)
    secrets.add(SECRET)
    try:
        fail_with_the_secret()
    except RuntimeError:
        logging.getLogger("intercom_fsm.test").exception("refresh failed")
    written = stream.getvalue()
    assert SECRET not in written
    assert "refresh_token=[redacted]" in written
    assert "fail_with_the_secret" in written  # the traceback is there, scrubbed
    if json_lines:
        [line] = written.splitlines()
        entry = json.loads(line)
        assert entry["msg"] == "refresh failed"
        assert "RuntimeError: the server echoed refresh_token=[redacted]" in entry["error"]
