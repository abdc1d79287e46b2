"""Framing an RTSP control connection (:mod:`intercom_fsm.adapters.camera.rtsp.messages`):
responses, interleaved packets and a server's own requests, however the
bytes are cut, with a camera's stray bytes skipped and limits kept."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_fsm.adapters.camera.rtsp.messages import (
    MAX_BODY,
    MAX_SKIPPED,
    IncomingStream,
    Interleaved,
    Response,
    RtspProtocolError,
    ServerRequest,
    request,
)

SDP = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
DESCRIBED = (
    b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://cam/stream/\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: "
    + str(len(SDP)).encode()
    + b"\r\n\r\n"
    + SDP
)
RTP = bytes([0x80, 0x60]) + bytes(10) + b"payload"
INTERLEAVED = b"$\x00" + len(RTP).to_bytes(2, "big") + RTP
KEEP_ALIVE = b"GET_PARAMETER rtsp://cam/stream RTSP/1.0\r\nCSeq: 7\r\n\r\n"
STREAM = DESCRIBED + INTERLEAVED + b"\r\n" + KEEP_ALIVE + INTERLEAVED


def expected() -> list[object]:
    return [
        ("response", 200, 2, SDP),
        ("rtp", 0, RTP),
        ("request", "GET_PARAMETER", "7"),
        ("rtp", 0, RTP),
    ]


def summary(messages: list[object]) -> list[object]:
    out: list[object] = []
    for message in messages:
        if isinstance(message, Response):
            out.append(("response", message.status, message.cseq, message.body))
        elif isinstance(message, Interleaved):
            out.append(("rtp", message.channel, message.data))
        elif isinstance(message, ServerRequest):
            out.append(("request", message.method, message.headers.get("cseq")))
    return out


def test_a_connections_messages_in_one_piece() -> None:
    found = IncomingStream().feed(STREAM)
    assert summary(list(found)) == expected()
    response = found[0]
    assert isinstance(response, Response) and response.ok
    assert response.headers.get("content-base") == "rtsp://cam/stream/"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_the_same_messages_however_the_bytes_are_cut(cuts: list[int]) -> None:
    stream = IncomingStream()
    found: list[object] = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        found += stream.feed(STREAM[start:end])
    assert summary(found) == expected()


def test_stray_bytes_between_messages_are_skipped_and_counted() -> None:
    stream = IncomingStream()
    found = stream.feed(b"\x17garbage\r\n" + INTERLEAVED)
    assert summary(list(found)) == [("rtp", 0, RTP)]
    assert stream.skipped_total == len(b"\x17garbage\r\n")


def test_what_is_not_rtsp_ends_the_connection() -> None:
    stream = IncomingStream()
    for _ in range(MAX_SKIPPED // 1001):
        stream.feed(b"x" * 1000 + b"\n")
    with pytest.raises(RtspProtocolError, match="not RTSP"):
        stream.feed(b"x" * 1000 + b"\n")


def test_a_body_larger_than_any_cameras_is_refused() -> None:
    head = f"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()
    with pytest.raises(RtspProtocolError, match="body"):
        IncomingStream().feed(head)


def test_a_content_length_that_is_no_number_is_refused() -> None:
    with pytest.raises(RtspProtocolError, match="Content-Length"):
        IncomingStream().feed(b"RTSP/1.0 200 OK\r\nContent-Length: many\r\n\r\n")


def test_folded_headers_and_bare_line_feeds() -> None:
    found = IncomingStream().feed(
        b'RTSP/1.0 401 Unauthorized\nCSeq: 3\nWWW-Authenticate: Digest realm="cam",\n'
        b' nonce="abc"\nWWW-Authenticate: Basic realm="cam"\n\n'
    )
    (response,) = found
    assert isinstance(response, Response) and response.status == 401
    assert response.headers.get_all("www-authenticate") == [
        'Digest realm="cam", nonce="abc"',
        'Basic realm="cam"',
    ]


def test_a_request_names_its_sequence_and_refuses_line_breaks_in_headers() -> None:
    sent = request("DESCRIBE", "rtsp://cam/stream", 2, {"Accept": "application/sdp"})
    assert sent.startswith(b"DESCRIBE rtsp://cam/stream RTSP/1.0\r\nCSeq: 2\r\n")
    assert sent.endswith(b"Accept: application/sdp\r\n\r\n")
    with pytest.raises(ValueError, match="line break"):
        request("SETUP", "rtsp://cam", 3, {"Transport": "x\r\nInjected: 1"})


@given(st.binary(max_size=4000))
def test_any_bytes_give_messages_or_a_protocol_error(data: bytes) -> None:
    stream = IncomingStream()
    found: list[object] = []
    try:
        found += stream.feed(data)
        found += stream.feed(data)
    except RtspProtocolError:
        return
    assert all(isinstance(m, Response | Interleaved | ServerRequest) for m in found)
