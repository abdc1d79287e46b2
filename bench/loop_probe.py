"""Run a program's asyncio loop under a lag probe, with ICE kept on loopback.

    python -m bench.loop_probe [--lag-file FILE] MODULE [ARGS...]

runs ``python -m MODULE ARGS...`` after two changes made for the benchmark
only: aioice gathers 127.0.0.1 alone (as in the tests), and, with
``--lag-file``, every ``asyncio.run`` gets a task that sleeps ``PERIOD``
seconds again and again and records how late it woke up. A late wake-up is the
time some callback held the loop, which is what a viewer's packets, the
signaling socket and the timers wait for. Lines of ``<wall clock> <lag>``
(seconds) are appended to FILE every half second, so a window of the run can
be cut out afterwards and nothing is lost when the program is killed.

The probe costs its process a few dozen microseconds per wake-up, so the
pipeline bench turns it on only in the runs that report lag, never in those
that report CPU per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tests.loopback import accept_loopback_viewers_in_the_daemon, restrict_ice_to_loopback

PERIOD = 0.01
FLUSH_EVERY = 0.5

T = TypeVar("T")


async def probe_lag(lag_file: Path) -> None:
    loop = asyncio.get_running_loop()
    pending: list[str] = []
    flushed = loop.time()
    with lag_file.open("a", buffering=1) as out:
        while True:
            asked = loop.time()
            await asyncio.sleep(PERIOD)
            woke = loop.time()
            pending.append(f"{time.time():.4f} {max(0.0, woke - asked - PERIOD):.6f}\n")
            if woke - flushed >= FLUSH_EVERY:
                out.write("".join(pending))
                pending.clear()
                flushed = woke


def install_probe(lag_file: Path) -> None:
    original_run = asyncio.run

    def run_with_probe(main: Coroutine[Any, Any, T], **options: Any) -> T:
        async def probed() -> T:
            probe = asyncio.create_task(probe_lag(lag_file))
            try:
                return await main
            finally:
                probe.cancel()

        return original_run(probed(), **options)

    asyncio.run = run_with_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lag-file", type=Path)
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    restrict_ice_to_loopback()
    if options.module == "intercom_fsm":
        accept_loopback_viewers_in_the_daemon()
    if options.lag_file is not None:
        install_probe(options.lag_file)
    sys.argv = [options.module, *options.args]
    runpy.run_module(options.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
