"""Which bound stops a stalled read: FFmpeg's socket timeout where it has one
(PyAV's interrupt callback takes the GIL at every socket read), PyAV's
elsewhere; opening is bounded by PyAV's whatever the source. That each bound
holds is tested against real servers: ``tests/camera/test_failures.py``
(HTTP), ``tests/media/test_rtsp_source.py`` (RTSP over TCP and UDP),
``tests/v4l2`` (V4L2 cameras)."""

from __future__ import annotations

import pytest

from intercom_fsm.adapters.camera.av_reader import Source, open_options, pyav_timeouts
from intercom_fsm.adapters.camera.readers import DeviceStream, ReaderSettings
from intercom_fsm.adapters.camera.sources import DevicePath, StreamUrl, VideoFile

TIMEOUT = 2.5


def settings(transport: str = "tcp") -> ReaderSettings:
    return ReaderSettings(640, 480, 15, rtsp_transport=transport, network_timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("source", "transport", "pyav", "ffmpeg_option"),
    [
        (StreamUrl("rtsp://127.0.0.1/door"), "tcp", (TIMEOUT, None), "timeout"),
        (StreamUrl("RTSP://127.0.0.1/door"), "tcp", (TIMEOUT, None), "timeout"),
        (StreamUrl("rtsp://127.0.0.1/door"), "udp", (TIMEOUT, TIMEOUT), "timeout"),
        (StreamUrl("http://127.0.0.1/mjpeg"), "tcp", (TIMEOUT, None), "rw_timeout"),
        (StreamUrl("https://127.0.0.1/mjpeg"), "tcp", (TIMEOUT, TIMEOUT), None),
        (StreamUrl("rtsps://127.0.0.1/door"), "tcp", (TIMEOUT, TIMEOUT), "timeout"),
        (
            DeviceStream(DevicePath("/dev/video0"), "/dev/video0", "h264"),
            "tcp",
            (TIMEOUT, TIMEOUT),
            None,
        ),
        (VideoFile("/srv/door.mp4"), "tcp", (None, None), None),
    ],
)
def test_a_read_is_bounded_by_ffmpeg_where_it_can_be(
    source: Source,
    transport: str,
    pyav: tuple[float | None, float | None],
    ffmpeg_option: str | None,
) -> None:
    assert pyav_timeouts(source, settings(transport)) == pyav
    options = open_options(source, settings(transport))
    socket_timeouts = {key: options[key] for key in ("timeout", "rw_timeout") if key in options}
    if ffmpeg_option is None:
        assert socket_timeouts == {}
    else:
        assert socket_timeouts == {ffmpeg_option: str(round(TIMEOUT * 1_000_000))}
