"""Soak: the daemon (a subprocess) against the sandbox, through many socket
drop/reconnect cycles and viewer join/leave cycles, printing its RSS, open
file descriptors and threads before and after (target: RSS growth under
10 MB after the warm-up). Not run in CI: it takes a few minutes.

    python bench/soak.py [--reconnects 300] [--viewers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from intercom_fsm.sandbox.process import SandboxProcess  # noqa: E402
from tests.e2e.conftest import approve_pending  # noqa: E402
from tests.loopback import restrict_ice_to_loopback  # noqa: E402
from tests.reliability.cycles import (  # noqa: E402
    Footprint,
    live_sessions,
    reconnect_cycles,
    settle,
    viewer_cycles,
)
from tests.reliability.helpers import device_code_of, running_daemon  # noqa: E402

WARM_UP = 5


def line(label: str, pid: int, footprint: Footprint) -> str:
    rss = psutil.Process(pid).memory_info().rss
    return (
        f"{label:<22} rss={rss / 2**20:7.1f} MiB  "
        f"fds={footprint.fds:3d}  threads={footprint.threads:3d}"
    )


async def soak(reconnects: int, viewers: int) -> int:
    restrict_ice_to_loopback()
    with (
        tempfile.TemporaryDirectory(prefix="intercom-soak-") as scratch,
        SandboxProcess(device_interval=1, test_controls=True) as sandbox,
    ):
        token_file = Path(scratch) / "config" / "tokens.json"
        with running_daemon(
            sandbox,
            token_file,
            Path(scratch) / "daemon.log",
            BACKOFF_BASE_SECONDS="0.05",
            BACKOFF_CAP_SECONDS="0.2",
            LOG_LEVEL="INFO",
        ) as daemon:
            approve_pending(sandbox, daemon)
            daemon.wait_for_state("Negotiating")
            assert daemon.process is not None
            pid = daemon.process.pid
            code = device_code_of(token_file)
            print(line("start", pid, Footprint.of(pid)))
            await reconnect_cycles(sandbox, daemon, code, WARM_UP)
            await viewer_cycles(sandbox, daemon, code, WARM_UP)
            warm = await settle(pid)
            warm_rss = psutil.Process(pid).memory_info().rss
            print(line("after warm-up", pid, warm))
            started = time.monotonic()
            await reconnect_cycles(sandbox, daemon, code, reconnects)
            print(
                line(f"after {reconnects} reconnects", pid, await settle(pid)),
                f"({time.monotonic() - started:.0f} s)",
            )
            started = time.monotonic()
            await viewer_cycles(sandbox, daemon, code, viewers)
            end = await settle(pid, 5.0)
            print(
                line(f"after {viewers} viewers", pid, end), f"({time.monotonic() - started:.0f} s)"
            )
            growth = (psutil.Process(pid).memory_info().rss - warm_rss) / 2**20
            print(f"RSS growth after warm-up: {growth:+.1f} MiB (target < 10 MiB)")
            print(
                f"fd change {end.fds - warm.fds:+d}, thread change {end.threads - warm.threads:+d}"
            )
            print(f"viewer sessions still open: {live_sessions(daemon.records())}")
            return 0 if growth < 10 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reconnects", type=int, default=300)
    parser.add_argument("--viewers", type=int, default=200)
    args = parser.parse_args()
    return asyncio.run(soak(args.reconnects, args.viewers))


if __name__ == "__main__":
    raise SystemExit(main())
