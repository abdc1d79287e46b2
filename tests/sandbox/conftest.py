"""Fixtures of the sandbox tests: one real sandbox process for the whole session.

Every server here listens on 127.0.0.1 only and is stopped when the session ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import pytest_asyncio

from intercom_fsm.sandbox.control_client import SandboxControl
from intercom_fsm.sandbox.process import SandboxInfo, SandboxProcess
from tests.sandbox.peers import ScriptedDevice

DEVICE_INTERVAL = 1
DEVICE_EXPIRES_IN = 60


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """Confidential client, control API, 1 s polling interval, 60 s device codes."""
    process = SandboxProcess(
        device_interval=DEVICE_INTERVAL, device_expires_in=DEVICE_EXPIRES_IN, test_controls=True
    )
    with process:
        yield process


@pytest.fixture
def info(sandbox: SandboxProcess) -> SandboxInfo:
    return sandbox.info


@pytest.fixture
def control(sandbox: SandboxProcess) -> Iterator[SandboxControl]:
    control = sandbox.control
    yield control
    control.clear_faults()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


@pytest.fixture
def device(http: aiohttp.ClientSession, info: SandboxInfo) -> ScriptedDevice:
    return ScriptedDevice(http, info)
