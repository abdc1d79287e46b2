"""A video file: looped forever, played at its own frame rate."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.events import CameraFailed, CameraOpened

from .conftest import EventRecorder, eventually, luma, next_frame, viewer

FILE_FPS = 10
FILE_FRAMES = 6


def grey_level(index: int) -> int:
    return 30 + index * 35


def write_video(path: Path) -> Path:
    """An MJPEG AVI whose frame ``i`` is a flat grey of ``grey_level(i)``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FILE_FPS, (160, 120))
    assert writer.isOpened()
    for index in range(FILE_FRAMES):
        writer.write(np.full((120, 160, 3), grey_level(index), np.uint8))
    writer.release()
    return path


def frame_index(luma_value: float) -> int:
    """Which file frame a delivered frame shows (limited-range luma of a grey)."""
    grey = (luma_value - 16) * 255 / 219
    return int(np.argmin([abs(grey - grey_level(i)) for i in range(FILE_FRAMES)]))


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_a_file_loops_at_its_own_rate(tmp_path: Path) -> None:
    video = write_video(tmp_path / "door.avi")
    recorder = EventRecorder()
    # Configured faster than the file: the file's own 10 fps sets the pace.
    camera = Camera(CameraSettings(source=str(video), fps=25), recorder)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(10):
            await track.recv()
            started = time.monotonic()
            frames = [await next_frame(track) for _ in range(2 * FILE_FRAMES + 3)]
            elapsed = time.monotonic() - started
    finally:
        await camera.close()

    indexes = [frame_index(luma(frame)) for frame in frames]
    wraps = sum(1 for a, b in itertools.pairwise(indexes) if b < a)
    assert wraps >= 2, indexes
    steps = [(b - a) % FILE_FRAMES for a, b in itertools.pairwise(indexes)]
    assert steps.count(1) >= len(steps) - 1, indexes  # every frame, in order
    assert elapsed == pytest.approx(len(frames) / FILE_FPS, rel=0.2)  # not 1000 fps
    assert camera.stats.frames_read <= camera.stats.frames_captured + 2
    assert (frames[0].width, frames[0].height) == (320, 240)  # scaled up to the setting
    assert [type(event) for event in recorder.events] == [CameraOpened]


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_a_file_faster_than_the_setting_is_thinned_not_slowed(tmp_path: Path) -> None:
    video = write_video(tmp_path / "door.avi")
    camera = Camera(CameraSettings(source=str(video), fps=5), EventRecorder())
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(10):
            await track.recv()
            started = time.monotonic()
            frames = [await next_frame(track) for _ in range(6)]
            elapsed = time.monotonic() - started
    finally:
        await camera.close()
    assert elapsed == pytest.approx(len(frames) / 5, rel=0.2)
    indexes = [frame_index(luma(frame)) for frame in frames]
    steps = [(b - a) % FILE_FRAMES for a, b in itertools.pairwise(indexes)]
    assert steps.count(2) >= len(steps) - 1, indexes  # every second picture
    assert camera.stats.frames_read >= 2 * camera.stats.frames_captured - 2


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_a_file_that_is_no_video_fails_and_serves_the_offline_frame(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.avi"
    bogus.write_bytes(b"this is not a video")
    recorder = EventRecorder()
    camera = Camera(CameraSettings(source=str(bogus), fps=10), recorder)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(5):
            frame = await next_frame(track)
        # The event comes on the loop after the capture thread failed; the
        # offline picture it published may be taken before that.
        await eventually(lambda: bool(recorder.of(CameraFailed)), 5, "CameraFailed")
    finally:
        await camera.close()
    assert luma(frame) < 100
    failed = recorder.of(CameraFailed)
    assert len(failed) == 1
    assert isinstance(failed[0], CameraFailed)
    assert str(bogus) in failed[0].reason
