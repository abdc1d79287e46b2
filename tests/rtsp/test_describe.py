"""The camera's H.264 in its DESCRIBE answer
(:mod:`intercom_fsm.adapters.camera.rtsp.describe`): control URLs as cameras
write them, the declared parameter sets, and what is left to FFmpeg."""

from __future__ import annotations

import pytest

from intercom_fsm.adapters.camera.rtsp.describe import NotReadHere, base_url, video_track

GSTREAMER = """v=0
o=- 1188340656180883 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=now-
m=video 0 RTP/AVP 96
c=IN IP4 127.0.0.1
a=rtpmap:96 H264/90000
a=framerate:15
a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAHqzZQKA9sBEAAAMAAQAAAwAeDxYtlg==,\
aOvjyyLA;profile-level-id=64001E
a=control:stream=0
"""

DAHUA_LIKE = """v=0
o=- 2251938202 2251938202 IN IP4 0.0.0.0
s=Media Server
a=control:*
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
m=video 0 RTP/AVP 96 97
a=control:trackID=0
a=rtpmap:96 H265/90000
a=rtpmap:97 H264/90000
a=fmtp:97 packetization-mode=1
"""


def test_a_gstreamer_camera() -> None:
    base = base_url("rtsp://127.0.0.1:8554/stamp", "rtsp://127.0.0.1:8554/stamp/", None)
    track = video_track(GSTREAMER, base)
    assert track.control_url == "rtsp://127.0.0.1:8554/stamp/stream=0"
    assert track.session_url == "rtsp://127.0.0.1:8554/stamp/"
    assert track.payload_type == 96 and track.packetization_mode == 1
    sets = track.parameter_sets
    assert sets is not None and sets.profile_level_id == "64001e" and len(sets.pps) == 1


def test_relative_controls_join_with_a_slash_even_after_a_query() -> None:
    url = "rtsp://cam/cam/realmonitor?channel=1&subtype=0"
    track = video_track(DAHUA_LIKE, base_url(url, None, None))
    assert track.control_url == f"{url}/trackID=0"
    assert track.session_url == url
    assert track.payload_type == 97  # the first H.264 of the video, not its H.265
    assert track.parameter_sets is None  # sent in band only


def test_an_absolute_control_is_taken_as_it_is() -> None:
    sdp = GSTREAMER.replace("a=control:stream=0", "a=control:rtsp://10.0.0.2/live/track1")
    assert video_track(sdp, "rtsp://cam/live").control_url == "rtsp://10.0.0.2/live/track1"


def test_content_location_when_there_is_no_content_base() -> None:
    assert base_url("rtsp://a/x", None, "rtsp://b/y/") == "rtsp://b/y/"
    assert base_url("rtsp://a/x", None, None) == "rtsp://a/x"


@pytest.mark.parametrize(
    ("sdp", "why"),
    [
        ("v=0\r\nm=audio 0 RTP/AVP 0\r\n", "no video"),
        (DAHUA_LIKE.replace("a=rtpmap:97 H264/90000\n", ""), "not H.264"),
        (GSTREAMER.replace("packetization-mode=1", "packetization-mode=2"), "mode 2"),
        (GSTREAMER.replace("H264/90000", "H264/48000"), "clock rate"),
    ],
)
def test_what_ffmpeg_is_left_to_read(sdp: str, why: str) -> None:
    with pytest.raises(NotReadHere, match=why):
        video_track(sdp, "rtsp://cam/")


def test_broken_parameter_sets_are_as_good_as_none() -> None:
    sdp = GSTREAMER.replace("Z2QAHqzZQKA9sBEAAAMAAQAAAwAeDxYtlg==", "not*base64")
    assert video_track(sdp, "rtsp://cam/").parameter_sets is None
