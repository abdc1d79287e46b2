"""A total outage of the device: 5 s in which its media link and its
signaling uplink carry nothing. The call is held through the socket's drop
(protocol.md 3.3), the viewer keeps its peer connection, and fresh frames come
back within 2 s of the link's return."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.netlab.conftest import lab_unavailable
from tests.netlab.device_lab import DeviceLab
from tests.netlab.lab import missing_requirements
from tests.netlab.viewer_process import ViewerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

OUTAGE = 5.0


def fresh_frames(viewer: ViewerProcess, since: float) -> list[float]:
    """Arrival times of the frames captured (by their stamp) after ``since``."""
    return [
        f["t"]
        for f in viewer.frames()
        if f["latency_ms"] is not None and f["t"] - f["latency_ms"] / 1000 >= since
    ]


def test_fresh_frames_come_back_within_two_seconds_of_an_outage(tmp_path: Path) -> None:
    problem = missing_requirements()
    if problem is not None:
        lab_unavailable(problem)
    with DeviceLab(tmp_path, ["viewer"], fps=15) as door:
        code = door.start_daemon(BACKOFF_BASE_SECONDS="1", BACKOFF_CAP_SECONDS="60")
        viewer = door.watch("viewer", code)
        viewer.wait_for_frames(30)
        links = [door.link("viewer"), door.uplink()]
        for link in links:
            link.cut()
        cut = time.monotonic()
        time.sleep(OUTAGE)
        for link in links:
            link.restore()
        restored = time.monotonic()

        viewer.wait_until(lambda v: bool(fresh_frames(v, restored)), 10, "a fresh frame")
        first_fresh = min(fresh_frames(viewer, restored))
        assert first_fresh - restored <= 2.0
        # Nothing came through the cut: it was real (frames decoded up to a
        # moment after the cut were on their way before it).
        assert not [f for f in viewer.frames() if cut + 1.0 < f["t"] < restored]
        # One peer connection all along: the call outlived the socket's drop.
        assert {f["offer"] for f in viewer.frames()} == {0}
        assert door.daemon is not None
        log = door.daemon.text()
        assert "SocketClosed" in log and "→ Held" in log
        assert "Connected → Closed" not in log
