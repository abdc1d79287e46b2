"""RTP back into H.264 access units
(:mod:`intercom_fsm.adapters.camera.rtsp.depacketize`), against aiortc's
packetizer (single NAL units, STAP-A, FU-A): what goes in comes out; a lost
packet drops its picture and the ones after it until the next IDR."""

from __future__ import annotations

import fractions
import os

import av
from aiortc.codecs.h264 import H264Encoder
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_fsm.adapters.camera.h264 import join_annexb
from intercom_fsm.adapters.camera.rtsp.depacketize import (
    H264Depacketizer,
    RtpPacket,
    parse_rtp,
)

PAYLOAD_TYPE = 96
SPS = bytes([0x67, 0x64, 0x00, 0x1E, 0xAC])
PPS = bytes([0x68, 0xEE, 0x3C, 0x80])


def nal(kind: int, size: int) -> bytes:
    body = bytes((i * 7 + size) % 251 + 1 for i in range(size))  # no start code inside
    return bytes([0x60 | kind]) + body


def rtp(sequence: int, timestamp: int, marker: bool, payload: bytes, *, pt: int = 96) -> bytes:
    header = bytes([0x80, (0x80 if marker else 0) | pt])
    return header + sequence.to_bytes(2, "big") + timestamp.to_bytes(4, "big") + bytes(4) + payload


def packets_of(pictures: list[list[bytes]], first_sequence: int = 65530) -> list[bytes]:
    """Each picture through aiortc's packetizer, as a camera would send it."""
    packer = H264Encoder()
    out: list[bytes] = []
    sequence = first_sequence
    for index, units in enumerate(pictures):
        packet = av.Packet(join_annexb(units))
        packet.pts = index * 6000
        packet.time_base = fractions.Fraction(1, 90_000)
        payloads, timestamp = packer.pack(packet)
        for number, payload in enumerate(payloads):
            out.append(rtp(sequence & 0xFFFF, timestamp, number == len(payloads) - 1, payload))
            sequence += 1
    return out


def depacketized(data: list[bytes], depacketizer: H264Depacketizer) -> list[tuple[bytes, ...]]:
    units: list[tuple[bytes, ...]] = []
    for packet in data:
        parsed = parse_rtp(packet)
        assert parsed is not None
        units += [unit.nal_units for unit in depacketizer.push(parsed)]
    return units


PICTURES = [
    [SPS, PPS, nal(5, 3000)],  # STAP-A for the sets, FU-A for the IDR
    [nal(1, 800)],  # a single NAL unit
    [nal(6, 20), nal(1, 2500)],
]


def test_what_the_packetizer_sent_comes_back_picture_by_picture() -> None:
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    assert depacketized(packets_of(PICTURES), depacketizer) == [tuple(p) for p in PICTURES]
    assert depacketizer.lost == 0 and depacketizer.dropped == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 5000), min_size=1, max_size=4), min_size=1, max_size=6))
def test_any_sizes_come_back(sizes: list[list[int]]) -> None:
    pictures = [
        [nal(5 if index == 0 else 1, size) for size in sizes_] for index, sizes_ in enumerate(sizes)
    ]
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    assert depacketized(packets_of(pictures), depacketizer) == [tuple(p) for p in pictures]


def test_a_lost_packet_drops_pictures_until_the_next_idr() -> None:
    pictures = [[nal(5, 3000)], [nal(1, 3000)], [nal(1, 500)], [nal(5, 3000)], [nal(1, 400)]]
    sent = packets_of(pictures)
    lost = sent[:4] + sent[5:]  # a fragment of the second picture
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    got = depacketized(lost, depacketizer)
    assert got == [tuple(pictures[0]), tuple(pictures[3]), tuple(pictures[4])]
    assert depacketizer.lost == 1 and depacketizer.dropped == 2


def test_a_picture_without_its_marker_ends_at_the_next_timestamp() -> None:
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    first = parse_rtp(rtp(1, 1000, False, nal(5, 10)))
    second = parse_rtp(rtp(2, 4000, True, nal(1, 10)))
    assert first is not None and second is not None
    assert depacketizer.push(first) == []
    done = depacketizer.push(second)
    assert [unit.timestamp for unit in done] == [1000, 4000]
    assert done[0].has_idr and not done[1].has_idr


def test_a_fragment_that_never_ends_is_dropped_at_the_size_limit() -> None:
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    middle = bytes([0x7C, 0x05]) + bytes(60_000)  # FU-A of an IDR, neither start nor end
    start = parse_rtp(rtp(0, 1, False, bytes([0x7C, 0x85]) + bytes(10)))
    assert start is not None and depacketizer.push(start) == []
    for sequence in range(1, 200):  # 12 MB, past MAX_ACCESS_UNIT
        packet = parse_rtp(rtp(sequence, 1, False, middle))
        assert packet is not None and depacketizer.push(packet) == []
    idr = parse_rtp(rtp(200, 2, True, nal(5, 10)))
    assert idr is not None
    assert [unit.has_idr for unit in depacketizer.push(idr)] == [True]
    assert depacketizer.dropped == 1


def test_other_payload_types_and_late_packets_are_ignored() -> None:
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    other = parse_rtp(rtp(1, 10, True, nal(1, 5), pt=97))
    assert other is not None and depacketizer.push(other) == []
    current = parse_rtp(rtp(10, 20, True, nal(5, 5)))
    late = parse_rtp(rtp(9, 10, True, nal(1, 5)))
    assert current is not None and late is not None
    assert len(depacketizer.push(current)) == 1
    assert depacketizer.push(late) == [] and depacketizer.lost == 0


def test_rtp_headers_with_csrcs_extensions_and_padding() -> None:
    csrc = bytes(4)
    extension = b"\xbe\xde\x00\x01" + b"\x10\xff\x00\x00"
    padding = b"\x00\x00\x03"
    data = (
        bytes([0x80 | 0x20 | 0x10 | 1, 0x80 | 96])
        + (7).to_bytes(2, "big")
        + (90).to_bytes(4, "big")
        + (0x1234).to_bytes(4, "big")
        + csrc
        + extension
        + b"PAYLOAD"
        + padding
    )
    packet = parse_rtp(data)
    assert packet == RtpPacket(7, 90, True, 96, 0x1234, b"PAYLOAD")
    assert parse_rtp(b"\x00" * 12) is None  # version 0
    assert parse_rtp(data[:14]) is None  # the extension cut short


@given(st.binary(max_size=200))
def test_any_bytes_are_a_packet_or_nothing(data: bytes) -> None:
    packet = parse_rtp(data)
    if packet is None:
        return
    assert packet.payload in data[12:]
    depacketizer = H264Depacketizer(packet.payload_type)
    for unit in depacketizer.push(packet) + depacketizer.push(packet):
        assert all(unit.nal_units)


def test_random_payloads_never_raise() -> None:
    depacketizer = H264Depacketizer(PAYLOAD_TYPE)
    for sequence in range(300):
        payload = os.urandom(1 + sequence % 40)
        parsed = parse_rtp(rtp(sequence, sequence // 3, sequence % 3 == 2, payload))
        assert parsed is not None
        for unit in depacketizer.push(parsed):
            assert unit.nal_units and all(unit.nal_units)
