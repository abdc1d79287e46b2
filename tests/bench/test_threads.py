"""bench/threads.py reads a process's threads from /proc and adds them up by name."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from bench.threads import MAIN_THREAD, ThreadSample, by_name, process_cpu_seconds, read_threads
from intercom_fsm.adapters.thread_names import name_native_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def test_a_busy_named_thread_shows_its_cpu_under_its_name() -> None:
    pid = os.getpid()
    spun, release = threading.Event(), threading.Event()

    def run() -> None:
        name_native_thread()
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        spun.set()
        release.wait(5)

    worker = threading.Thread(target=run, name="intercom-spinner")
    before, process_before = read_threads(pid), process_cpu_seconds(pid)
    started = time.monotonic()
    worker.start()
    try:
        assert spun.wait(10)
        after, process_after = read_threads(pid), process_cpu_seconds(pid)
        seconds = time.monotonic() - started
    finally:
        release.set()
        worker.join(5)

    uses = {use.name: use for use in by_name(before, after, seconds)}
    assert MAIN_THREAD in uses  # this test runs on the main thread
    assert uses["spinner"].threads == 1
    assert 290 <= uses["spinner"].cpu_ms_per_s * seconds <= 400  # its 0.3 s of CPU, in ms
    assert process_after - process_before >= 0.25  # the process's ticks hold it too


def test_threads_of_one_name_add_up_and_a_new_one_counts_from_zero() -> None:
    before = {
        1: ThreadSample(MAIN_THREAD, 1_000_000_000, 10),
        2: ThreadSample("vp8-high_0", 500_000_000, 5),
    }
    after = {
        1: ThreadSample(MAIN_THREAD, 1_100_000_000, 30),
        2: ThreadSample("vp8-high_0", 700_000_000, 25),  # 200 ms in the window
        3: ThreadSample("vp8-high_0", 100_000_000, 4),  # born inside it
    }
    uses = by_name(before, after, seconds=2.0)
    assert [(u.name, u.threads, u.cpu_ms_per_s, u.wakeups_per_s) for u in uses] == [
        ("vp8-high_0", 2, 150.0, 12.0),
        (MAIN_THREAD, 1, 50.0, 10.0),
    ]
