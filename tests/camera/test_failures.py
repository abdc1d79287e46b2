"""A source that cannot be opened or stalls: reported once, the offline frame
served meanwhile, reopened with a bounded, jittered backoff."""

from __future__ import annotations

import asyncio
import time

import pytest

from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.events import CameraFailed, CameraOpened

from .conftest import (
    BRIGHT_LUMA,
    EventRecorder,
    MjpegCamera,
    eventually,
    free_port,
    luma,
    next_frame,
    viewer,
)


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_a_missing_device_is_reported_once_and_retried_with_backoff() -> None:
    recorder = EventRecorder()
    settings = CameraSettings(source="/dev/video-absent", fps=10, reopen_base=0.05, reopen_cap=0.2)
    # The largest jitter every time: delays 0.05, 0.1, 0.2, 0.2, ...
    camera = Camera(settings, recorder, random=lambda: 1.0)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(10):
            started = time.monotonic()
            frames = [await next_frame(track) for _ in range(12)]
            elapsed = time.monotonic() - started
    finally:
        await camera.close()

    assert all(luma(frame) < 100 for frame in frames)  # the offline frame
    assert elapsed == pytest.approx(11 / 10, rel=0.25)  # at the configured rate
    assert recorder.events == [CameraFailed("cannot open device /dev/video-absent")]
    stats = camera.stats
    assert stats.failures == 1
    assert stats.last_reopen_delay == pytest.approx(0.2)
    # 0.05 + 0.1 + 0.2 * n: about 6 attempts in 1.2 s, far fewer than without backoff.
    assert 4 <= stats.reopen_attempts <= 9, stats
    assert stats.source_opens == 0 and not stats.online


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_the_jitter_draws_below_the_exponential_ceiling() -> None:
    settings = CameraSettings(source="/dev/video-absent", fps=10, reopen_base=0.2, reopen_cap=5)
    draws: list[float] = []

    def quarter() -> float:
        draws.append(0.25)
        return 0.25

    camera = Camera(settings, EventRecorder(), random=quarter)
    await camera.open()
    await eventually(lambda: camera.stats.reopen_attempts >= 3, 5, "three reopen attempts")
    await camera.close()
    # Ceilings 0.2, 0.4, 0.8, 1.6: delays 0.05, 0.1, 0.2, 0.4, each a quarter of its ceiling.
    assert 3 <= camera.stats.reopen_attempts <= 4
    assert camera.stats.last_reopen_delay in (pytest.approx(0.2), pytest.approx(0.4))
    assert len(draws) == camera.stats.reopen_attempts


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_a_refused_stream_does_not_block_and_names_no_secret() -> None:
    recorder = EventRecorder()
    url = f"rtsp://admin:hunter22@127.0.0.1:{free_port()}/live"
    camera = Camera(CameraSettings(source=url, fps=10, reopen_base=0.1, reopen_cap=0.2), recorder)
    started = time.monotonic()
    await camera.open()
    assert time.monotonic() - started < 0.05  # open() returns at once
    await eventually(lambda: bool(recorder.events), 5, "CameraFailed")
    await camera.close()
    assert len(recorder.events) == 1
    failed = recorder.events[0]
    assert isinstance(failed, CameraFailed)
    assert "127.0.0.1" in failed.reason and "hunter22" not in failed.reason


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_a_stalled_stream_is_noticed_within_its_read_timeout() -> None:
    stalling = MjpegCamera(stall_after=10)
    await stalling.start()
    recorder = EventRecorder()
    settings = CameraSettings(source=stalling.url(), fps=10, reopen_base=1.0, reopen_cap=2.0)
    camera = Camera(settings, recorder)
    await camera.open()
    track = viewer(camera)
    try:
        async with asyncio.timeout(12):
            while luma(await next_frame(track)) < BRIGHT_LUMA:
                pass
            last_live = time.monotonic()
            while luma(await next_frame(track)) > BRIGHT_LUMA:
                last_live = time.monotonic()
            noticed = time.monotonic() - last_live
            # Viewers get the offline frame within the 2 s read timeout (plus slack).
            assert noticed < 3.0
            assert [type(event) for event in recorder.events] == [CameraOpened, CameraFailed]
            assert (await next_frame(track)).width == 320
    finally:
        await camera.close()
        await stalling.stop()
