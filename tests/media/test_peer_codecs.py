"""The codec each viewer gets, and an answer that says what it really is."""

from __future__ import annotations

from intercom_fsm.adapters.peer_codecs import (
    VideoSourceInfo,
    negotiated_profile_level_id,
    plan_video,
)

# What Chrome offers (shortened): VP8, then H.264 in several profiles.
CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108 109 112 113",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=rtpmap:108 H264/90000",
        "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:109 rtx/90000",
        "a=fmtp:109 apt=108",
        "a=rtpmap:112 H264/90000",
        "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
        "a=rtcp-fb:112 nack pli",
        "a=rtpmap:113 rtx/90000",
        "a=fmtp:113 apt=112",
        "",
    ]
)
HIGH_CAMERA = VideoSourceInfo(passthrough_profile="640028")


def m_line(sdp: str) -> list[str]:
    line = next(line for line in sdp.splitlines() if line.startswith("m=video"))
    return line.split()[3:]


def rtpmap_order(sdp: str) -> list[str]:
    return [
        line.split(":")[1].split()[0] for line in sdp.splitlines() if line.startswith("a=rtpmap:")
    ]


def test_a_high_profile_camera_goes_to_a_viewer_offering_high() -> None:
    plan = plan_video(CHROME_OFFER, "auto", HIGH_CAMERA)
    assert plan.camera_payload == "112" and plan.camera_profile == "640028"
    # First in our order, its retransmission right behind, in the m= line
    # and in the rtpmap lines (aiortc reads the order there).
    assert m_line(plan.offer)[:2] == ["112", "113"]
    assert rtpmap_order(plan.offer)[:2] == ["112", "113"]
    assert "a=rtcp-fb:112 nack pli" in plan.offer
    # aiortc is shown a profile it negotiates...
    assert "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" in (
        plan.offer
    )
    # ...and the answer is told the camera's.
    from aiortc import RTCSessionDescription

    answer = RTCSessionDescription(
        "\r\n".join(
            [
                "v=0",
                "m=video 9 UDP/TLS/RTP/SAVPF 112 113",
                "a=rtpmap:112 H264/90000",
                "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                "a=rtpmap:113 rtx/90000",
                "",
            ]
        ),
        "answer",
    )
    told = plan.answer(answer)
    assert negotiated_profile_level_id(told.sdp) == "640028"
    assert told.type == "answer"


def test_no_matching_profile_means_vp8_first_then_baseline() -> None:
    main_camera = VideoSourceInfo(passthrough_profile="4d001f")
    plan = plan_video(CHROME_OFFER, "auto", main_camera)
    assert plan.camera_payload is None
    assert m_line(plan.offer)[:4] == ["96", "97", "102", "103"]
    assert plan.offer.count("profile-level-id=64001f") == 1  # untouched


def test_a_hardware_encoder_puts_baseline_h264_before_vp8() -> None:
    plan = plan_video(CHROME_OFFER, "auto", VideoSourceInfo(hardware_h264=True))
    assert m_line(plan.offer)[:2] == ["102", "103"]


def test_the_configured_codec_comes_first() -> None:
    assert m_line(plan_video(CHROME_OFFER, "vp8", HIGH_CAMERA).offer)[0] == "96"
    assert m_line(plan_video(CHROME_OFFER, "h264", VideoSourceInfo()).offer)[0] == "102"
    assert plan_video(CHROME_OFFER, "h264", HIGH_CAMERA).camera_payload == "112"


def test_constrained_high_is_not_high_and_mode_0_is_not_taken() -> None:
    offer = CHROME_OFFER.replace("profile-level-id=64001f", "profile-level-id=640c1f")
    assert plan_video(offer, "auto", HIGH_CAMERA).camera_payload is None
    offer = CHROME_OFFER.replace(
        "packetization-mode=1;profile-level-id=64001f",
        "packetization-mode=0;profile-level-id=64001f",
    )
    assert plan_video(offer, "auto", HIGH_CAMERA).camera_payload is None


def test_an_offer_without_video_is_left_as_it_is() -> None:
    offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    assert plan_video(offer, "auto", HIGH_CAMERA).offer == offer
