"""The shared H.264 encoder: the board's hardware encoder when there is one,
libx264 otherwise, and libx264 taking over, without dropping a viewer, when
the hardware encoder fails. This machine has no hardware encoder: the choice
is checked on given facts, the failure with the real ``h264_v4l2m2m``
(which cannot open here) and with a real libx264 told to fail on picture N."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import av
import pytest

from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.h264_encoders import (
    HARDWARE_CODEC,
    EncoderChoice,
    H264Encoder,
    choose_h264_encoder,
    find_m2m_h264_encoder,
    is_m2m_h264_encoder,
    open_h264_encoder,
    software,
)
from tests.camera.conftest import eventually

from .conftest import Device, Viewer

PI_ENCODER = EncoderChoice(HARDWARE_CODEC, hardware=True, reason="given", device="/dev/video11")


def test_hardware_is_chosen_when_pyav_has_it_and_the_device_answers() -> None:
    both = {"libx264", HARDWARE_CODEC}
    chosen = choose_h264_encoder("auto", both, lambda: "/dev/video11")
    assert chosen.hardware and chosen.codec == HARDWARE_CODEC and chosen.device == "/dev/video11"
    assert chosen.description == (
        "h264_v4l2m2m (hardware): V4L2 memory-to-memory encoder /dev/video11"
    )
    no_device = choose_h264_encoder("auto", both, lambda: None)
    assert not no_device.hardware and no_device.codec == "libx264"
    assert "no V4L2 memory-to-memory H.264 encoder" in no_device.reason
    assert not choose_h264_encoder("auto", {"libx264"}, lambda: "/dev/video11").hardware
    assert not choose_h264_encoder("software", both, lambda: "/dev/video11").hardware


def test_nodes_that_are_no_encoder_are_passed_over() -> None:
    assert not is_m2m_h264_encoder("/dev/null")  # not V4L2 at all
    assert not is_m2m_h264_encoder("/dev/video-that-is-not-there")
    assert find_m2m_h264_encoder(["/dev/null", "/dev/zero"]) is None


class FailsOnPicture:
    """A real libx264 that raises on picture ``failing_at`` and after, as a
    hardware encoder that lost its device would."""

    def __init__(self, real: H264Encoder, failing_at: int) -> None:
        self._real = real
        self._failing_at = failing_at
        self.pictures = 0

    def encode(self, frame: av.VideoFrame | None) -> Iterable[av.Packet[Any]]:
        if frame is not None:
            self.pictures += 1
            if self.pictures >= self._failing_at:
                raise av.error.OSError(5, "Input/output error")
        return self._real.encode(frame)


def failing_hardware(failing_at: int) -> Callable[..., H264Encoder]:
    def open_encoder(
        choice: EncoderChoice, width: int, height: int, fps: float, bitrate: int
    ) -> H264Encoder:
        real = open_h264_encoder(
            software("behind the test's hardware") if choice.hardware else choice,
            width,
            height,
            fps,
            bitrate,
        )
        return FailsOnPicture(real, failing_at) if choice.hardware else real

    return open_encoder


@pytest.mark.e2e
@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("fails", ["on picture 20", "at open"])
async def test_a_failing_hardware_encoder_gives_way_to_libx264_and_no_viewer_notices(
    make_device: Callable[..., Device], caplog: pytest.LogCaptureFixture, fails: str
) -> None:
    caplog.set_level(logging.WARNING)
    options: dict[str, Any] = {"h264_encoder": PI_ENCODER}
    if fails == "on picture 20":
        options["open_h264"] = failing_hardware(20)
    # "at open": the real h264_v4l2m2m, which finds no device on this machine.
    device = make_device(CameraSettings(width=320, height=240, fps=15), **options)
    await device.camera.open()
    assert device.camera.stats.h264_encoder == HARDWARE_CODEC
    viewers = [Viewer(("video/H264",)), Viewer(("video/H264",))]
    for viewer in viewers:
        await device.connect(viewer)
    await eventually(lambda: all(len(v.frames) >= 30 for v in viewers), 20, "pictures")
    stats = device.camera.stats
    assert stats.h264_encoder_fallbacks == 1
    assert (stats.h264_encoder, stats.h264_encoder_hardware) == ("libx264", False)
    assert "libx264 takes over" in caplog.text
    # Nobody was dropped: both connections up, both still decoding.
    counts = [len(v.frames) for v in viewers]
    await eventually(
        lambda: all(len(v.frames) >= n + 15 for v, n in zip(viewers, counts, strict=True)),
        10,
        "pictures after the fallback",
    )
    assert [v.pc.connectionState for v in viewers] == ["connected", "connected"]
    assert device.camera.stats.h264_encoder_fallbacks == 1
    # What status shows.
    lines = device.camera.media_path().lines
    assert "H.264 encoder: libx264 (software): h264_v4l2m2m failed" in "\n".join(lines)
    assert "hardware encoder failures: 1" in lines
