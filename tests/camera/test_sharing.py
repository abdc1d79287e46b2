"""One capture shared by every viewer: latest frame only, the event loop never
blocked, the source released when the last viewer leaves, nothing left behind
by close()."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from aiortc.mediastreams import MediaStreamError

from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.capture import THREAD_NAME
from intercom_fsm.adapters.camera.hub import ViewerTrack
from intercom_fsm.events import CameraOpened

from .conftest import EventRecorder, LoopLagProbe, eventually, viewer


def capture_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_a_slow_viewer_gets_the_newest_frame_never_a_backlog() -> None:
    fps = 20.0
    camera = Camera(CameraSettings(fps=fps), EventRecorder())
    await camera.open()
    track = viewer(camera)
    ages: list[float] = []
    pts: list[int] = []
    try:
        async with asyncio.timeout(10):
            for _ in range(8):
                frame = await track.recv()
                ages.append(track.frame_age(frame))
                pts.append(frame.pts or 0)
                await asyncio.sleep(3.5 / fps)  # a viewer three times slower than the camera
    finally:
        await camera.close()
    assert max(ages) < 2 / fps, ages
    # Each frame is the one captured just before the viewer asked: no queue.
    gaps = [(b - a) / 90_000 for a, b in itertools.pairwise(pts)]
    assert min(gaps) >= 2.9 / fps, gaps
    stats = camera.stats
    assert stats.frames_delivered == 8
    assert stats.frames_dropped >= 7 * 2


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_the_event_loop_is_never_blocked() -> None:
    camera = Camera(CameraSettings(width=640, height=480, fps=30), EventRecorder())
    probe = LoopLagProbe()
    probe.start()
    await camera.open()
    tracks = [viewer(camera), viewer(camera)]
    received = [0, 0]

    async def consume(index: int) -> None:
        while True:
            await tracks[index].recv()
            received[index] += 1

    consumers = [asyncio.create_task(consume(index)) for index in range(2)]
    # Two seconds of frames at 30 fps for each viewer: the window the probe measures.
    await eventually(lambda: min(received) >= 60, 10, "60 frames for each viewer")
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    await camera.close()
    await probe.stop()
    assert len(probe.lags) > 300
    assert probe.percentile(0.99) < 0.010, (probe.median(), probe.percentile(0.99))


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_viewers_share_one_capture_which_stops_with_the_last() -> None:
    recorder = EventRecorder()
    camera = Camera(CameraSettings(fps=20), recorder)
    await camera.open()
    first, second = viewer(camera), viewer(camera)
    try:
        async with asyncio.timeout(10):

            async def pts_seen(track: ViewerTrack) -> set[int]:
                return {(await track.recv()).pts or 0 for _ in range(5)}

            seen_first, seen_second = await asyncio.gather(pts_seen(first), pts_seen(second))
            assert len(seen_first & seen_second) >= 4  # the same pictures
            assert len(capture_threads()) == 1
            assert camera.stats.source_opens == 1
            assert camera.stats.viewers == 2

            first.stop()
            assert camera.stats.capturing  # one viewer left
            await second.recv()
            second.stop()
            await eventually(lambda: not camera.stats.capturing, 2, "capture stopped")
            read = camera.stats.frames_read
            await asyncio.sleep(0.3)
            assert camera.stats.frames_read == read  # the source is no longer read
            with pytest.raises(MediaStreamError):
                await first.recv()

            # A new viewer reopens the source and gets a fresh frame, not the old one.
            third = viewer(camera)
            frame = await third.recv()
            assert third.frame_age(frame) < 2 / 20
            assert camera.stats.source_opens == 2
            assert len(capture_threads()) == 1
    finally:
        await camera.close()
    assert recorder.of(CameraOpened) == recorder.events  # standby is not a failure
    assert len(recorder.events) == 1


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_close_is_idempotent_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    camera = Camera(CameraSettings(fps=10), EventRecorder())
    await camera.close()  # never opened
    await camera.open()
    await camera.open()
    assert len(capture_threads()) == 1
    track = viewer(camera)
    async with asyncio.timeout(5):
        await track.recv()
    await camera.close()
    await camera.close()
    assert capture_threads() == []
    assert set(threading.enumerate()) <= before
    assert not camera.stats.capturing and not camera.stats.online
    with pytest.raises(MediaStreamError):
        await track.recv()

    # Opened again after a close, it works as new.
    await camera.open()
    track = viewer(camera)
    async with asyncio.timeout(5):
        await track.recv()
    await camera.close()
    assert capture_threads() == []


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_a_viewer_waiting_for_a_frame_is_released_by_stop() -> None:
    camera = Camera(CameraSettings(fps=1), EventRecorder())
    track = viewer(camera)  # before open: it waits for frames
    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 1)
    await camera.close()
