"""The built-in test pattern through a viewer's track."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time

import numpy as np
import pytest

from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.events import CameraOpened

from .conftest import EventRecorder, next_frame, viewer


@pytest.mark.asyncio
@pytest.mark.timeout(15)
@pytest.mark.parametrize(("width", "height", "fps"), [(320, 240, 10.0), (640, 480, 15.0)])
async def test_frames_at_the_configured_size_and_rate(width: int, height: int, fps: float) -> None:
    recorder = EventRecorder()
    camera = Camera(CameraSettings(width=width, height=height, fps=fps), recorder)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(10):
            first = await next_frame(track)
            started = time.monotonic()
            frames = [first] + [await next_frame(track) for _ in range(int(fps * 1.5))]
            elapsed = time.monotonic() - started
    finally:
        await camera.close()

    assert all((f.width, f.height, f.format.name) == (width, height, "yuv420p") for f in frames)
    assert all(f.time_base == fractions.Fraction(1, 90_000) for f in frames)
    steps = np.diff([f.pts for f in frames])
    assert (steps > 0).all()
    # pts follow capture time: one frame interval apart on the 90 kHz clock.
    assert np.median(steps) == pytest.approx(90_000 / fps, rel=0.05)
    assert elapsed == pytest.approx((len(frames) - 1) / fps, rel=0.15)
    assert recorder.of(CameraOpened) == [
        CameraOpened(f"test pattern (testsrc), {width}x{height} at {fps:g} fps")
    ]


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_the_pattern_moves() -> None:
    camera = Camera(CameraSettings(fps=10), EventRecorder())
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(5):
            pictures = [(await next_frame(track)).to_ndarray() for _ in range(5)]
    finally:
        await camera.close()
    for before, after in itertools.pairwise(pictures):
        changed = np.count_nonzero(before != after)
        assert changed > 0.005 * before.size  # the bar moved and the clock ticked
