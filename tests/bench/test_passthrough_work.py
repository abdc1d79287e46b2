"""bench/passthrough_work.py: a camera's RTSP stream made as a server writes
it, and the daemon's per-picture work on it, as the wake-up floor's clients
use them. What the work sends must be what a viewer of the daemon receives."""

from __future__ import annotations

import itertools
import secrets

import pytest
from pylibsrtp import Policy, Session

from bench.passthrough_work import (
    DELIMITER_PACKET_BYTES,
    GOP,
    PPS,
    SPS,
    SRTP_KEY_BYTES,
    VIEWER_PAYLOAD_TYPE,
    PassthroughWork,
    camera_pictures,
)
from intercom_fsm.adapters.camera.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SLICE,
    NAL_SPS,
    nal_type,
)
from intercom_fsm.adapters.camera.rtsp.depacketize import H264Depacketizer, RtpPacket, parse_rtp
from intercom_fsm.adapters.camera.rtsp.messages import IncomingStream, Interleaved
from intercom_fsm.adapters.h264_payloads import PAYLOAD_MAX


def _camera_units(stream: list[tuple[bytes, bytes]]) -> list[tuple[bytes, ...]]:
    """Each picture's NAL units, read back from the camera's bytes."""
    incoming = IncomingStream()
    depacketizer = H264Depacketizer(96)
    units: list[tuple[bytes, ...]] = []
    for delimiter, picture in stream:
        for message in incoming.feed(delimiter + picture):
            assert isinstance(message, Interleaved)
            packet = parse_rtp(message.data)
            assert packet is not None
            units += [unit.nal_units for unit in depacketizer.push(packet)]
    return units


def test_the_camera_writes_interleaved_pictures_with_parameter_sets_before_each_idr() -> None:
    stream = list(itertools.islice(camera_pictures(5000, fps=15), GOP + 2))
    assert all(len(delimiter) == DELIMITER_PACKET_BYTES for delimiter, _ in stream)
    pictures = _camera_units(stream)
    assert len(pictures) == GOP + 2
    for index, units in enumerate(pictures):
        types = [nal_type(unit) for unit in units]
        if index % GOP == 0:
            assert types == [NAL_AUD, NAL_SPS, NAL_PPS, NAL_IDR]
            assert units[1:3] == (SPS, PPS)
        else:
            assert types == [NAL_AUD, NAL_SLICE]
        assert len(units[-1]) == 5000


def test_a_stream_of_empty_pictures_is_refused() -> None:
    with pytest.raises(ValueError, match="a header and a body"):
        next(camera_pictures(1, fps=15))


@pytest.mark.parametrize("viewers", [1, 3])
def test_every_viewer_receives_every_picture_under_its_own_srtp_and_sequence(
    viewers: int,
) -> None:
    key = secrets.token_bytes(SRTP_KEY_BYTES)
    sent: list[bytes] = []
    work = PassthroughWork(sent.append, viewers, key)
    stream = list(itertools.islice(camera_pictures(3300, fps=15), GOP + 3))
    for delimiter, picture in stream:
        # As the socket may hand them over: cut anywhere.
        data = delimiter + picture
        work.received(data[:7])
        work.received(data[7:])
    camera = [
        tuple(unit for unit in units if nal_type(unit) != NAL_AUD)  # delimiters are not sent
        for units in _camera_units(stream)
    ]
    assert work.frames == len(camera) == GOP + 3

    receiver = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    by_viewer: dict[int, list[RtpPacket]] = {}
    for datagram in sent:
        packet = parse_rtp(receiver.unprotect(datagram))
        assert packet is not None
        assert packet.payload_type == VIEWER_PAYLOAD_TYPE
        by_viewer.setdefault(packet.ssrc, []).append(packet)
    assert sorted(by_viewer) == list(range(1, viewers + 1))
    for packets in by_viewer.values():
        assert [packet.sequence for packet in packets] == list(range(len(packets)))
        depacketizer = H264Depacketizer(VIEWER_PAYLOAD_TYPE)
        received = [unit.nal_units for packet in packets for unit in depacketizer.push(packet)]
        assert received == camera
        assert all(len(packet.payload) <= PAYLOAD_MAX for packet in packets)
