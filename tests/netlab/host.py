"""The host side of the network lab: running its commands, and what it finds
on this machine (namespaces, interfaces, addresses, processes).

Every command is bounded in time. :func:`sweep_stale` removes what a run of
the lab that no longer exists left behind under the lab's prefix, and nothing
else: a name of a live run, or anyone else's, is never touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
BLOCK_SIZE = 64
"""Addresses per lab: sixteen /30 links."""
COMMAND_TIMEOUT = 15.0
PREFIX = "il"
REQUIRED_TOOLS = ("ip", "tc", "nft", "timeout")

_NAMESPACE_NAME = re.compile(rf"^{PREFIX}(\d+)-[a-z0-9]+$")
_INTERFACE_NAME = re.compile(rf"^{PREFIX}(\d+)x\d+[ab]$")


class LabError(RuntimeError):
    """A lab command failed; the message has the command and its output."""


def missing_requirements() -> str | None:
    """Why a lab cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (Debian iproute2, nftables, coreutils)"
    return None


def run(argv: Sequence[str], *, input_text: str | None = None, check: bool = True) -> str:
    """Run one command, bounded; its stdout. Raises :class:`LabError`."""
    try:
        result = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise LabError(f"{' '.join(argv)}: no answer in {COMMAND_TIMEOUT:g} s") from error
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def sweep_stale() -> list[str]:
    """Remove namespaces and interfaces of runs that no longer exist; what it removed."""
    removed = []
    for name in namespace_names():
        match = _NAMESPACE_NAME.match(name)
        if match and not _alive(int(match.group(1))):
            kill([int(p) for p in run(["ip", "netns", "pids", name], check=False).split()])
            run(["ip", "netns", "delete", name], check=False)
            removed.append(name)
    for interface in root_interfaces():
        match = _INTERFACE_NAME.match(interface)
        if match and not _alive(int(match.group(1))):
            run(["ip", "link", "delete", interface], check=False)
            removed.append(interface)
    for table in re.findall(rf"table inet ({PREFIX}(\d+))\b", run(["nft", "list", "tables"])):
        if not _alive(int(table[1])):
            run(["nft", "delete", "table", "inet", table[0]], check=False)
            removed.append(table[0])
    return removed


def namespace_names() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]


def root_interfaces() -> list[str]:
    names = []
    for line in run(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def _root_addresses() -> set[ipaddress.IPv4Address]:
    found = set()
    for address in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", run(["ip", "-4", "-o", "addr"])):
        found.add(ipaddress.IPv4Address(address))
    return found


def free_block(serial: int) -> ipaddress.IPv4Network:
    """A block of :data:`BLOCK_SIZE` addresses of the lab network that the root
    namespace does not use, starting from one picked by process id."""
    blocks = LAB_NETWORK.num_addresses // BLOCK_SIZE
    used = _root_addresses()
    start = (os.getpid() * 31 + serial * 7) % blocks
    for offset in range(blocks):
        index = (start + offset) % blocks
        base = LAB_NETWORK.network_address + index * BLOCK_SIZE
        block = ipaddress.IPv4Network(f"{base}/{32 - (BLOCK_SIZE.bit_length() - 1)}")
        if not any(address in block for address in used):
            return block
    raise LabError("no free block of addresses in 198.18.0.0/15")


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed child of this process
    that nobody reaped yet has ended all the same)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.02)
