"""V4L2 cameras: which reader takes a camera from the formats it offers, the
options FFmpeg's V4L2 input is opened with, the device questions asked of
nodes that are not cameras, and finding and waiting on a descriptor. The
daemon reading a camera is tested against an emulated one (``tests/v4l2``)."""

from __future__ import annotations

import os
import time

import pytest

from intercom_fsm.adapters.camera import v4l2
from intercom_fsm.adapters.camera.av_reader import PyAvReader, open_options
from intercom_fsm.adapters.camera.readers import (
    DeviceStream,
    ReaderSettings,
    SourceUnavailable,
    device_stream,
)
from intercom_fsm.adapters.camera.sources import CameraIndex, DevicePath

BOTH = v4l2.CameraFormats(h264=True, mjpeg=True)
H264_ONLY = v4l2.CameraFormats(h264=True, mjpeg=False)
MJPEG_ONLY = v4l2.CameraFormats(h264=False, mjpeg=True)
RAW_ONLY = v4l2.CameraFormats(h264=False, mjpeg=False)


@pytest.mark.parametrize(
    ("offered", "prefer_h264", "expected"),
    [
        (BOTH, True, "h264"),  # passed through
        (BOTH, False, "mjpeg"),  # passthrough off: the cheaper decode
        (H264_ONLY, False, "h264"),  # decoded, as nothing else is offered
        (MJPEG_ONLY, True, "mjpeg"),
        (RAW_ONLY, True, None),  # OpenCV reads raw YUYV
        (None, True, None),  # not a V4L2 capture device, or not there: OpenCV says why
    ],
)
def test_a_camera_is_read_in_the_best_format_it_offers(
    offered: v4l2.CameraFormats | None, prefer_h264: bool, expected: str | None
) -> None:
    asked: list[str] = []

    def formats_of(node: str) -> v4l2.CameraFormats | None:
        asked.append(node)
        return offered

    stream = device_stream(DevicePath("/dev/video2"), prefer_h264, formats_of)
    assert asked == ["/dev/video2"]
    assert (stream.input_format if stream else None) == expected


def test_a_camera_index_is_its_video_node() -> None:
    stream = device_stream(CameraIndex(3), True, lambda node: MJPEG_ONLY)
    assert stream == DeviceStream(CameraIndex(3), "/dev/video3", "mjpeg")
    assert stream.description == "camera 3"


def test_the_camera_is_asked_for_the_configured_size_and_rate() -> None:
    stream = DeviceStream(DevicePath("/dev/video0"), "/dev/video0", "h264")
    options = open_options(stream, ReaderSettings(1280, 720, 30))
    assert options["input_format"] == "h264"
    assert options["video_size"] == "1280x720"
    assert options["framerate"] == "30"


def test_nodes_that_are_no_camera_answer_nothing() -> None:
    for node in ("/dev/null", "/dev/video-absent"):
        assert v4l2.camera_formats(node) is None
        assert v4l2.force_keyframe(node) is False


def test_the_wheels_v4l2_input_refuses_a_node_that_is_no_camera_in_words() -> None:
    stream = DeviceStream(DevicePath("/dev/null"), "/dev/null", "h264")
    with pytest.raises(SourceUnavailable, match=r"^cannot open device /dev/null \(.+\)$"):
        PyAvReader(stream, ReaderSettings(640, 480, 15))


def test_the_descriptors_open_on_a_node_are_found_and_a_wait_ends_in_time() -> None:
    descriptor = os.open("/dev/null", os.O_RDONLY)
    try:
        assert descriptor in v4l2.descriptors_open_on("/dev/null")
    finally:
        os.close(descriptor)
    assert descriptor not in v4l2.descriptors_open_on("/dev/null")
    assert v4l2.descriptors_open_on("/dev/video-absent") == []

    read_end, write_end = os.pipe()
    try:
        started = time.monotonic()
        assert v4l2.wait_for_picture(read_end, 0.2) is False
        assert 0.15 <= time.monotonic() - started < 1.0
        os.write(write_end, b"x")
        assert v4l2.wait_for_picture(read_end, 5.0) is True
    finally:
        os.close(read_end)
        os.close(write_end)
