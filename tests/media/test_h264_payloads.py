"""An access unit's NAL units cut into RTP payloads without start codes:
what aiortc's packetizer sends, back whole through a depacketizer."""

from __future__ import annotations

import fractions

import av
from aiortc.codecs.h264 import H264Encoder
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_fsm.adapters.camera.h264 import AccessUnitFixer, StreamLayout, join_annexb
from intercom_fsm.adapters.camera.rtsp.depacketize import H264Depacketizer, RtpPacket
from intercom_fsm.adapters.h264_payloads import FU_A, PAYLOAD_MAX, STAP_A, payloads
from intercom_fsm.adapters.rtp_payloads import SharedPayloads

SPS = bytes([0x67, 0x64, 0x00, 0x1E, 0xAC, 0xB4])
PPS = bytes([0x68, 0xCE, 0x3C, 0xB0])


def nal_unit(kind: int, size: int, importance: int = 3, fill: int = 0x5A) -> bytes:
    return bytes([importance << 5 | kind]) + bytes([fill]) * (size - 1)


# No zero byte inside a unit: it then reads back the same from Annex-B,
# which is how aiortc's packetizer takes it.
units_strategy = st.lists(
    st.builds(
        lambda kind, importance, body: bytes([importance << 5 | kind]) + body,
        st.integers(1, 23),
        st.integers(0, 3),
        st.binary(min_size=0, max_size=4000).map(lambda b: b.replace(b"\x00", b"\x01")),
    ),
    min_size=1,
    max_size=9,
)


def depacketized(cut: list[bytes]) -> tuple[bytes, ...]:
    depacketizer = H264Depacketizer(payload_type=96)
    units = []
    for index, payload in enumerate(cut):
        packet = RtpPacket(
            sequence=index,
            timestamp=3000,
            marker=index == len(cut) - 1,
            payload_type=96,
            ssrc=1,
            payload=payload,
        )
        units += depacketizer.push(packet)
    assert len(units) == 1
    return units[0].nal_units


@settings(max_examples=200, deadline=None)
@given(units_strategy)
def test_every_unit_comes_back_whole_from_payloads_that_fit(units: list[bytes]) -> None:
    cut = payloads(units)
    assert all(len(payload) <= PAYLOAD_MAX for payload in cut)
    assert depacketized(cut) == tuple(units)


@settings(max_examples=200, deadline=None)
@given(units_strategy)
def test_the_payloads_are_aiortcs_for_the_same_access_unit(units: list[bytes]) -> None:
    assert payloads(units) == H264Encoder._packetize(
        H264Encoder._split_bitstream(join_annexb(units))
    )


def test_small_units_share_a_stap_a_and_a_large_one_is_fragmented() -> None:
    sei = nal_unit(6, 20, importance=0)
    idr = nal_unit(5, 3000)
    cut = payloads([SPS, PPS, sei, idr])
    stap, *fragments = cut
    assert stap[0] == 0x60 | STAP_A  # the highest importance of the three
    assert stap[1:] == b"".join(len(u).to_bytes(2, "big") + u for u in (SPS, PPS, sei))
    assert [f[0] for f in fragments] == [0x60 | FU_A] * 3
    assert [f[1] for f in fragments] == [0x80 | 5, 5, 0x40 | 5]
    sizes = [len(f) - 2 for f in fragments]
    assert sum(sizes) == len(idr) - 1 and max(sizes) - min(sizes) <= 1


def test_a_unit_alone_goes_as_it_is() -> None:
    slice_ = nal_unit(1, 900)
    assert payloads([slice_]) == [slice_]
    assert payloads([nal_unit(1, 1300)]) == [nal_unit(1, 1300)]


def test_the_shared_payloads_cut_an_access_units_units_with_its_timestamp() -> None:
    fixer = AccessUnitFixer(StreamLayout(None, None))
    unit = fixer.fix_units([SPS, PPS, nal_unit(5, 2000)])
    assert unit.nal_units == (SPS, PPS, nal_unit(5, 2000))
    packet = av.Packet(unit.data)
    packet.pts = 123_456
    packet.time_base = fractions.Fraction(1, 90_000)
    shared = SharedPayloads("video/H264")
    shared.add(packet, unit.nal_units)
    assert shared.get(packet) == H264Encoder().pack(packet)
