"""Socket drop/reconnect and viewer join/leave cycles against a running
daemon, and what its process holds (fds, threads, RSS): shared by the leak
test and ``bench/soak.py``."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import attrs

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess
from tests.e2e.viewer import MediaViewer


@attrs.frozen
class Footprint:
    fds: int
    threads: int
    rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> Footprint:
        proc = Path(f"/proc/{pid}")
        rss_pages = int((proc / "statm").read_text().split()[1])
        return cls(
            fds=len(os.listdir(proc / "fd")),
            threads=len(os.listdir(proc / "task")),
            rss_bytes=rss_pages * os.sysconf("SC_PAGE_SIZE"),
        )

    def describe(self) -> str:
        return f"fds={self.fds} threads={self.threads} rss={self.rss_bytes / 2**20:.1f} MiB"


def live_sessions(records: list[dict[str, Any]]) -> int:
    opened: dict[str, int] = {}
    for record in records:
        session = record.get("session")
        if not session or record.get("from") == record.get("to"):
            continue
        if record.get("from") == "Offered" or record.get("to") == "Offered":
            opened[session] = 1
        if record.get("to") == "Closed":
            opened[session] = 0
    return sum(opened.values())


async def reconnect_cycles(
    sandbox: SandboxProcess, daemon: DaemonProcess, device_code: str, cycles: int
) -> None:
    """Drop the device's socket from the server ``cycles`` times, each time
    waiting for the daemon to be back online."""
    control = sandbox.control
    for _ in range(cycles):
        negotiating = sum(1 for t in daemon.transitions() if t[1] == "Negotiating")
        closed = await asyncio.to_thread(control.close_device_socket, device_code, 1011)
        assert closed, "the device was not connected"
        await asyncio.to_thread(daemon.wait_for_state, "Negotiating", 20, negotiating)
        await _until_connected(sandbox, device_code)


async def _until_connected(sandbox: SandboxProcess, device_code: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        device = await asyncio.to_thread(sandbox.control.device, device_code=device_code)
        if device.connected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the device did not reconnect")


async def viewer_cycles(
    sandbox: SandboxProcess, daemon: DaemonProcess, device_code: str, cycles: int
) -> None:
    """A viewer joins, receives a few frames and leaves, ``cycles`` times."""
    for _ in range(cycles):
        viewer = await MediaViewer(sandbox.info, device_code).start()
        try:
            await viewer.wait_for_frames(2)
        finally:
            await viewer.close()
    deadline = time.monotonic() + 15
    while live_sessions(daemon.records()) and time.monotonic() < deadline:  # noqa: ASYNC110 (a log file, no event to wait on)
        await asyncio.sleep(0.1)
    assert live_sessions(daemon.records()) == 0, "sessions not reaped"


async def settle(pid: int, seconds: float = 3.0) -> Footprint:
    """The footprint once the process has had ``seconds`` to release things."""
    await asyncio.sleep(seconds)
    return Footprint.of(pid)
