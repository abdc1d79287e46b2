"""Fixtures of the network tests: a lab of namespaces, removed after each test.

As root with iproute2 and nftables a lab always works; without them the tests
skip, except under ``CI=true``, where they fail (CI runs as root and the
Makefile installs the tools).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.netlab.lab import NetLab, missing_requirements
from tests.requirements import missing


def lab_unavailable(reason: str) -> NoReturn:
    missing("the network lab", reason)


@pytest.fixture
def netlab() -> Iterator[NetLab]:
    problem = missing_requirements()
    if problem is not None:
        lab_unavailable(problem)
    with NetLab() as lab:
        yield lab
