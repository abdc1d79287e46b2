"""The daemon reading a V4L2 camera through FFmpeg's V4L2 input: an H.264
camera's own packets passed through to viewers that take its profile (the
camera asked for a keyframe when one joins), VP8 viewers beside them served
by one decode, an MJPEG camera decoded straight to I420, a raw camera read
by OpenCV, and a camera that stalls or is unplugged failing in time and
coming back. The camera is
emulated in user space (:mod:`.emulator`); the daemon, FFmpeg and the
viewers are real."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import attrs
import pytest

from bench.h264_offer import HIGH_3_1, answered_profile
from intercom_fsm.sandbox.process import SandboxProcess
from tests.camera.conftest import eventually
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import DaemonProcess
from tests.e2e.viewer import MediaViewer

from .conftest import H264_GOP
from .emulator import EmulatedCamera, Recording

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CAMERA_PROFILE = "64001f"  # the recording's SPS: High 3.1
FPS = 15
GOP_SECONDS = H264_GOP / FPS
KEYFRAME_ASKED = "keyframe asked"


def camera_opened(daemon: DaemonProcess) -> list[str]:
    return [
        str(r["msg"]) for r in daemon.records() if str(r.get("msg", "")).startswith("camera opened")
    ]


def camera_events(daemon: DaemonProcess, event: str) -> int:
    return sum(1 for r in daemon.records() if r.get("event") == event and "from" in r)


async def streaming_daemon(
    sandbox: SandboxProcess, daemon: DaemonProcess, camera_open: bool = True
) -> str:
    """Signed in and signaling (and, with ``camera_open``, the camera open):
    the device code."""
    device_code = approve_pending(sandbox, daemon)
    daemon.wait_for_state("Negotiating")
    if camera_open:
        await until(lambda: bool(camera_opened(daemon)), 10, "the camera opened")
    return device_code


def in_order(stamps: list[int | None], recording_frames: int) -> bool:
    """Every stamp one more than the one before (the recording loops)."""
    read = [s for s in stamps if s is not None]
    return len(read) > 1 and all(
        later == (earlier + 1) % recording_frames for earlier, later in itertools.pairwise(read)
    )


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    """Wait, without holding up the viewers, for the daemon's log to show
    ``check`` (read a few times a second: each look parses the whole log)."""
    await eventually(check, within, what, every=0.1)


async def first_frame_after(viewer: MediaViewer) -> float:
    offered = time.monotonic()
    await viewer.start()
    await viewer.wait_for_frames(1)
    return viewer.frame_times[0] - offered


@pytest.mark.timeout(90)
async def test_an_h264_camera_is_passed_through_and_asked_for_a_keyframe_by_joiners(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    h264_recording: Recording,
    mjpeg_recording: Recording,
) -> None:
    camera = make_camera(h264_recording, mjpeg_recording)
    daemon = start_daemon(camera)
    device_code = await streaming_daemon(sandbox, daemon)
    opened = camera_opened(daemon)[0]
    assert opened.endswith("(H.264 High 3.1 1280x720, passed through)"), opened
    assert "set format H264 1280x720 (asked H264 640x480)" in camera.log()

    passthrough = MediaViewer(sandbox.info, device_code, ("video/H264",), HIGH_3_1)
    transcoded = MediaViewer(sandbox.info, device_code, ("video/VP8",))
    try:
        # The first viewer on VP8: the camera is decoded from the keyframe it
        # is asked for (its next IDR is up to 4 s away; the first one went to
        # FFmpeg's probing at open).
        waited = await first_frame_after(transcoded)
        assert waited < GOP_SECONDS / 2, f"first VP8 picture after {waited:.2f} s"
        assert camera.log().count(KEYFRAME_ASKED) == 1

        # A viewer of the camera's profile beside it: its own packets, from a
        # keyframe asked for as it joins.
        waited = await first_frame_after(passthrough)
        assert answered_profile(passthrough.answer_sdp or "") == CAMERA_PROFILE
        assert waited < GOP_SECONDS / 2, f"first picture after {waited:.2f} s"
        assert camera.log().count(KEYFRAME_ASKED) == 2
        await asyncio.gather(passthrough.wait_for_frames(45), transcoded.wait_for_frames(45))
    finally:
        await passthrough.close()
        await transcoded.close()
    # The camera's own pictures, at its size, every one of them in order.
    assert passthrough.sizes == {(1280, 720)}
    assert in_order(passthrough.stamps, h264_recording.pictures)
    assert transcoded.sizes == {(640, 480)}


@pytest.mark.timeout(90)
async def test_without_the_keyframe_control_a_joiner_starts_at_the_cameras_next_idr(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    h264_recording: Recording,
) -> None:
    camera = make_camera(h264_recording, keyframe_control=False)
    daemon = start_daemon(camera)
    # The viewer offers as the daemon starts to signal, while the camera is
    # still opening: the answer waits to know what the camera sends.
    device_code = await streaming_daemon(sandbox, daemon, camera_open=False)
    viewer = MediaViewer(sandbox.info, device_code, ("video/H264",), HIGH_3_1)
    try:
        waited = await first_frame_after(viewer)
        await viewer.wait_for_frames(15)
    finally:
        await viewer.close()
    assert answered_profile(viewer.answer_sdp or "") == CAMERA_PROFILE
    assert viewer.sizes == {(1280, 720)}
    assert waited < GOP_SECONDS + 0.7, f"first picture after {waited:.2f} s"
    assert KEYFRAME_ASKED not in camera.log()
    first = next(s for s in viewer.stamps if s is not None)
    assert first % H264_GOP == 0, f"the first picture, {first}, is no IDR of the recording"


@pytest.mark.timeout(90)
async def test_a_camera_sending_its_parameter_sets_once_is_passed_through_with_them_at_every_idr(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    h264_headers_once_recording: Recording,
) -> None:
    camera = make_camera(h264_headers_once_recording)
    daemon = start_daemon(camera)
    device_code = await streaming_daemon(sandbox, daemon)
    # Joining, the viewer gets the camera's next IDR, which came without them.
    viewer = MediaViewer(sandbox.info, device_code, ("video/H264",), HIGH_3_1)
    try:
        waited = await first_frame_after(viewer)
        await viewer.wait_for_frames(30)
    finally:
        await viewer.close()
    assert answered_profile(viewer.answer_sdp or "") == CAMERA_PROFILE
    assert waited < GOP_SECONDS / 2, f"first picture after {waited:.2f} s"
    first = next(s for s in viewer.stamps if s is not None)
    assert first % H264_GOP == 0 and first > 0, f"the first picture, {first}, is no later IDR"
    assert in_order(viewer.stamps, h264_headers_once_recording.pictures)


@pytest.mark.timeout(90)
async def test_a_camera_offering_h264_and_mjpeg_is_read_in_mjpeg_without_passthrough(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    h264_recording: Recording,
    mjpeg_recording: Recording,
) -> None:
    camera = make_camera(h264_recording, mjpeg_recording)
    daemon = start_daemon(camera, VIDEO_H264_PASSTHROUGH="0")
    device_code = await streaming_daemon(sandbox, daemon)
    opened = camera_opened(daemon)[0]
    assert opened.endswith("(mjpeg 640x480)"), opened
    assert "set format MJPG 640x480 (asked MJPG 640x480)" in camera.log()
    viewer = MediaViewer(sandbox.info, device_code, ("video/VP8",))
    try:
        await viewer.start()
        await viewer.wait_for_frames(30)
    finally:
        await viewer.close()
    assert viewer.sizes == {(640, 480)}
    assert in_order(viewer.stamps, mjpeg_recording.pictures)


@attrs.frozen
class Outage:
    """What the daemon and a viewer showed while the camera was down and after."""

    noticed: float
    """Seconds from the fault to CameraFailed."""
    offline_line: str
    """The log's last ``camera offline`` line."""
    stamp_while_down: int | None
    """The stamp of the viewer's last picture 2.5 s into the outage."""
    recovered_while_down: int
    reopened_while_down: int
    """How often the camera was set streaming again before it was mended."""
    stamps_after: list[int | None]
    """The viewer's stamps from 5 pictures after the camera was back."""


async def outage(
    daemon: DaemonProcess,
    camera: EmulatedCamera,
    viewer: MediaViewer,
    fault: Callable[[], None],
    mend: Callable[[], None],
) -> Outage:
    """``fault``, 2.5 s of it (the read timeout is 1 s), ``mend``, and 20
    pictures more."""
    failures = camera_events(daemon, "CameraFailed")
    recoveries = camera_events(daemon, "CameraRecovered")
    streamed = camera.log().count("stream on")
    fault()
    started = time.monotonic()
    await until(lambda: camera_events(daemon, "CameraFailed") > failures, 5, "CameraFailed")
    noticed = time.monotonic() - started
    offline = [str(r["msg"]) for r in daemon.records() if "camera offline" in str(r.get("msg"))]
    await asyncio.sleep(2.5)
    stamp_while_down = viewer.stamps[-1]
    recovered_while_down = camera_events(daemon, "CameraRecovered") - recoveries
    reopened = camera.log().count("stream on") - streamed
    mend()
    await until(lambda: camera_events(daemon, "CameraRecovered") > recoveries, 10, "back")
    back = len(viewer.stamps)
    await viewer.wait_for_frames(20)
    return Outage(
        noticed,
        offline[-1],
        stamp_while_down,
        recovered_while_down,
        reopened,
        viewer.stamps[back + 5 :],
    )


@pytest.mark.timeout(120)
async def test_a_camera_that_stalls_or_is_unplugged_fails_in_time_and_comes_back(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    mjpeg_recording: Recording,
) -> None:
    camera = make_camera(mjpeg_recording)
    daemon = start_daemon(camera, VIDEO_NETWORK_TIMEOUT_SECONDS="1")
    device_code = await streaming_daemon(sandbox, daemon)
    viewer = MediaViewer(sandbox.info, device_code, ("video/VP8",))
    try:
        await viewer.start()
        await viewer.wait_for_frames(15)
        stalled = await outage(daemon, camera, viewer, camera.stall, camera.resume)
        unplugged = await outage(daemon, camera, viewer, camera.unplug, camera.plug_in)
    finally:
        await viewer.close()
    for down, reason in ((stalled, "nothing for 1 s"), (unplugged, "No such device")):
        # Failed within the 1 s timeout, for what it was, ...
        assert down.noticed < 2.5, down
        assert down.offline_line.endswith(f"no picture from device /dev/video42 ({reason})")
        # ... viewers on the offline picture (no stamp), the camera failed
        # while it is reopened in vain, then the camera's pictures in order.
        assert down.stamp_while_down is None, down
        assert down.recovered_while_down == 0, down
        assert in_order(down.stamps_after, mjpeg_recording.pictures), down
    # A stalled camera opens and sends nothing; an unplugged one is not there.
    assert stalled.reopened_while_down > 0
    assert unplugged.reopened_while_down == 0


@pytest.mark.timeout(120)
async def test_a_raw_camera_is_read_by_opencv_and_a_stall_fails_it_in_time(
    sandbox: SandboxProcess,
    make_camera: Callable[..., EmulatedCamera],
    start_daemon: Callable[..., DaemonProcess],
    yuyv_recording: Recording,
) -> None:
    camera = make_camera(yuyv_recording)
    daemon = start_daemon(camera, VIDEO_NETWORK_TIMEOUT_SECONDS="1")
    device_code = await streaming_daemon(sandbox, daemon)
    assert camera_opened(daemon)[0].endswith("/dev/video42, 640x480 at 15 fps")
    assert "set format YUYV 640x480 (asked YUYV 640x480)" in camera.log()
    viewer = MediaViewer(sandbox.info, device_code, ("video/VP8",))
    try:
        await viewer.start()
        await viewer.wait_for_frames(30)
        assert viewer.sizes == {(640, 480)}
        assert in_order(viewer.stamps, yuyv_recording.pictures)
        # OpenCV would wait 10 s for a picture: the daemon's timeout instead.
        stalled = await outage(daemon, camera, viewer, camera.stall, camera.resume)
    finally:
        await viewer.close()
    assert stalled.noticed < 2.5, stalled
    # OpenCV does not say why.
    assert stalled.offline_line.endswith("(it ended, failed or stalled)"), stalled
    assert stalled.stamp_while_down is None, stalled
    assert stalled.recovered_while_down == 0, stalled
    assert in_order(stalled.stamps_after, yuyv_recording.pictures), stalled
