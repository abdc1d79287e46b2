"""Which audio sections an offer gets answered, on the SDP text alone
(protocol.md 3.2); the real-peer tests are in test_peer_answers.py."""

from __future__ import annotations

import pytest

from intercom_fsm.adapters.audio.sdp import plan_offer, split

TRANSPORT = "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:sha-256 AA\r\na=setup:actpass\r\n"


def offer(*sections: str) -> str:
    mids = " ".join(str(i) for i in range(len(sections)))
    return f"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mids}\r\n" + "".join(
        section.replace("MID", str(index)) for index, section in enumerate(sections)
    )


VIDEO = (
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:MID\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n"
    + TRANSPORT
)
OPUS_SENDRECV = (
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\na=mid:MID\r\na=sendrecv\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtcp-fb:111 transport-cc\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" + TRANSPORT
)
G722_ONLY = (
    "m=audio 9 UDP/TLS/RTP/SAVPF 9\r\na=mid:MID\r\na=recvonly\r\na=rtpmap:9 G722/8000\r\n"
    + TRANSPORT
)


def test_the_answered_audio_keeps_opus_alone() -> None:
    plan = plan_offer(offer(OPUS_SENDRECV, VIDEO), has_microphone=True, has_speaker=True)
    assert plan.audio_mid == "0" and plan.audio_direction == "sendrecv"
    audio = split(plan.sdp)[1][0]
    assert audio.payload_types == ["111"]
    assert all("PCMU" not in line and "PCMA" not in line for line in audio.lines)
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in audio.lines


@pytest.mark.parametrize(
    ("microphone", "speaker", "direction"),
    [(True, False, "sendonly"), (False, True, "recvonly")],
)
def test_sendrecv_with_half_the_devices(microphone: bool, speaker: bool, direction: str) -> None:
    plan = plan_offer(offer(VIDEO, OPUS_SENDRECV), has_microphone=microphone, has_speaker=speaker)
    assert plan.audio_direction == direction


def test_an_unusable_first_section_is_put_back_inactive_in_place() -> None:
    text = offer(G722_ONLY, VIDEO, OPUS_SENDRECV)
    plan = plan_offer(text, has_microphone=True, has_speaker=True)
    assert plan.audio_mid == "2"
    assert "a=group:BUNDLE 1 2" in plan.sdp
    assert [s.kind for s in split(plan.sdp)[1]] == ["video", "audio"]
    # What aiortc would answer for the two it saw, then the splice.
    answer = (
        "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 1 2\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\na=ice-ufrag:x\r\n"
        "a=ice-pwd:y\r\na=fingerprint:sha-256 BB\r\na=setup:active\r\n"
        "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=sendrecv\r\n"
    )
    finished = plan.finish(answer)
    sections = split(finished)[1]
    assert [(s.kind, s.mid, s.direction) for s in sections] == [
        ("audio", "0", "inactive"),
        ("video", "1", "sendonly"),
        ("audio", "2", "sendrecv"),
    ]
    assert sections[0].payload_types == ["9"] and "a=rtpmap:9 G722/8000" in sections[0].lines
    assert "a=ice-ufrag:x" in sections[0].lines and "a=setup:active" in sections[0].lines
    assert "a=group:BUNDLE 0 1 2" in finished
    assert finished.endswith("\r\n")


def test_only_one_audio_section_is_answered() -> None:
    plan = plan_offer(offer(OPUS_SENDRECV, OPUS_SENDRECV, VIDEO), True, True)
    assert plan.audio_mid == "0"
    assert [r.reason for r in plan.rejected] == ["only one audio section is answered"]


def test_an_offer_with_nothing_to_answer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no video section.*the device has no audio"):
        plan_offer(offer(OPUS_SENDRECV), has_microphone=False, has_speaker=False)
    with pytest.raises(ValueError, match="no codec the device can use"):
        plan_offer(offer(G722_ONLY), has_microphone=True, has_speaker=True)


def test_audio_alone_when_audio_is_possible() -> None:
    plan = plan_offer(offer(OPUS_SENDRECV), has_microphone=True, has_speaker=False)
    assert not plan.has_video and plan.answers_audio and plan.audio_direction == "sendonly"
