"""What a test needs of the machine it runs on (a browser, a sound server, an
RTSP server, network namespaces, ...): where a part is missing, the test
fails under ``CI=true``, whose set-up installs every part, and is skipped on
a developer's machine that lacks it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, reason: str) -> NoReturn:
    """``what`` cannot run here, because ``reason``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} cannot run in CI: {reason}")
    pytest.skip(reason)
