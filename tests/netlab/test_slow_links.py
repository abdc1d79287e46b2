"""Video that follows each viewer: a viewer behind a slow, lossy link and a
fast one beside it, watching the same daemon.

The daemon runs in a namespace with the bench's time-stamping camera at
640x480@15 (its high layer about 460 kbit/s); each viewer has its own veth
link to it. The slow one's link carries 300 kbit/s (tbf, a 500 ms queue) and
loses 3 % of the packets each way (nftables). It must neither freeze nor
drown: at least 80 % of the frame rate, no gap over 2 s from its first frame
on, less than its link carries. The fast viewer gets the high layer.

The viewers recover from loss as browsers do (``bench/loss_recovery.py``).
"""

from __future__ import annotations

import datetime
import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest

from intercom_fsm.adapters.camera.layers import LayerPolicy
from tests.netlab.conftest import lab_unavailable
from tests.netlab.device_lab import DeviceLab
from tests.netlab.lab import missing_requirements
from tests.netlab.viewer_process import ViewerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FPS = 15
SETTLE = 10.0
"""New viewers start on the low layer; the fast one is up after its first probe."""
WINDOW = 15.0


def frames_between(viewer: ViewerProcess, start: float, end: float) -> list[dict[str, object]]:
    return [f for f in viewer.frames() if start <= float(f["t"]) < end]


def longest_gap(viewer: ViewerProcess, until: float) -> float:
    times = [float(f["t"]) for f in viewer.frames() if float(f["t"]) < until]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0) if times else until


def kbit_per_second(viewer: ViewerProcess, start: float, end: float) -> float:
    return viewer.payload_bytes_between(start, end) * 8 / 1000 / (end - start)


def test_a_slow_lossy_viewer_keeps_moving_and_a_fast_one_keeps_its_quality(
    tmp_path: Path,
) -> None:
    problem = missing_requirements()
    if problem is not None:
        lab_unavailable(problem)
    with DeviceLab(tmp_path, ["slow", "fast"], fps=FPS) as door:
        slow_side = door.viewer_namespace("slow")
        link = door.link("slow")
        for towards in (slow_side, door.device_namespace):
            link.shape(300, towards=towards)
            link.set_loss(3.0, towards=towards)
        code = door.start_daemon()
        fast, slow = door.watch("fast", code), door.watch("slow", code)
        fast.wait_for_frames(1)
        slow.wait_for_frames(1)
        first = float(slow.frames()[0]["t"])
        start = first + SETTLE
        end = start + WINDOW
        slow.wait_until(lambda v: time.monotonic() >= end, end - time.monotonic() + 5, "the window")

        distinct = {f["seq"] for f in frames_between(slow, start, end) if f["seq"] is not None}
        assert len(distinct) / WINDOW >= 0.8 * FPS, f"{len(distinct) / WINDOW:.1f} fps"
        assert longest_gap(slow, end) <= 2.0
        slow_rate = kbit_per_second(slow, start, end)
        fast_rate = kbit_per_second(fast, start, end)
        assert slow_rate < 300 * 0.9  # the low layer: what the link carries, with room
        assert fast_rate > 0.8 * 460 and fast_rate > 2 * slow_rate
        assert door.daemon is not None
        switches = layer_switches(door.daemon.records())
        # The fast viewer went up once and stayed; nobody went down but
        # through a failed probe, and each failed probe of a viewer doubled
        # its wait before the next one: no flapping.
        assert any(
            [reason.split(":")[0] for _, reason in own] == ["probe"] for own in switches.values()
        ), switches
        for own in switches.values():
            failed = [at for at, reason in own if reason.startswith("probe failed")]
            ups = [at for at, reason in own if reason.startswith("probe:")]
            assert len(own) == len(ups) + len(failed), own
            wait = LayerPolicy().first_backoff
            for before, after in itertools.pairwise(failed):
                assert after - before >= wait, own
                wait *= 2


LAYER_SWITCH = re.compile(r"viewer '(?P<viewer>[^']*)': its video goes .*? one: (?P<reason>.*)")


def layer_switches(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, str]]]:
    """Each viewer's layer switches that the daemon logged: (seconds, reason)."""
    found: dict[str, list[tuple[float, str]]] = {}
    for record in records:
        match = LAYER_SWITCH.fullmatch(str(record.get("msg", "")))
        if match is not None:
            at = datetime.datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00"))
            found.setdefault(match["viewer"], []).append((at.timestamp(), match["reason"]))
    return found
