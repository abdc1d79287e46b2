"""VIDEO_SOURCE parsing: every accepted form, clear errors, no credentials shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_fsm.adapters.camera import (
    CameraIndex,
    DevicePath,
    StreamUrl,
    TestPattern,
    VideoFile,
    parse_video_source,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("testsrc", TestPattern()),
        (" TESTSRC ", TestPattern()),
        ("0", CameraIndex(0)),
        ("12", CameraIndex(12)),
        ("/dev/video0", DevicePath("/dev/video0")),
        ("/dev/v4l/by-id/usb-cam-video-index0", DevicePath("/dev/v4l/by-id/usb-cam-video-index0")),
        ("http://cam.local/video.mjpg", StreamUrl("http://cam.local/video.mjpg")),
        ("https://cam.local:8443/x", StreamUrl("https://cam.local:8443/x")),
        ("rtsp://10.0.0.5:554/stream1", StreamUrl("rtsp://10.0.0.5:554/stream1")),
        ("rtsps://[fd00::5]/live", StreamUrl("rtsps://[fd00::5]/live")),
    ],
)
def test_accepted_forms(text: str, expected: object) -> None:
    assert parse_video_source(text) == expected


def test_an_existing_file(tmp_path: Path) -> None:
    video = tmp_path / "door.avi"
    video.write_bytes(b"not checked until opened")
    assert parse_video_source(str(video)) == VideoFile(str(video))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("-1", "negative"),
        ("ftp://cam.local/x", "scheme 'ftp' is not supported"),
        ("file:///tmp/x.avi", "scheme 'file' is not supported"),
        ("http:///nohost", "has no host"),
        ("http://cam.local:99999/x", "invalid port"),
        ("/no/such/file.avi", "no existing file"),
        ("webcam", "no existing file"),
    ],
)
def test_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_video_source(text)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        parse_video_source(str(tmp_path))


def test_descriptions_never_show_credentials() -> None:
    source = parse_video_source(
        "rtsp://admin:s3cret-pw@cam.local:554/live?user=admin&pwd=s3cret-pw"
    )
    assert source.description == "rtsp://cam.local:554/live?[redacted]"
    assert "s3cret" not in repr(source)
    with pytest.raises(ValueError, match="invalid port") as refused:
        parse_video_source("http://admin:s3cret-pw@cam.local:99999/")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ValueError, match="not supported") as refused:
        parse_video_source("ftp://admin:s3cret-pw@cam.local/")
    assert "s3cret" not in str(refused.value)


def test_descriptions_of_local_sources() -> None:
    assert parse_video_source("0").description == "camera 0"
    assert parse_video_source("/dev/video2").description == "device /dev/video2"
    assert "testsrc" in parse_video_source("testsrc").description


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        parse_video_source(text)
    except ValueError as error:
        message = str(error)
    else:
        return
    assert message
