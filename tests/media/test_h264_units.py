"""Access units made fit for WebRTC: Annex-B, SPS/PPS before every IDR."""

from __future__ import annotations

import pytest

from intercom_fsm.adapters.camera.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SLICE,
    NAL_SPS,
    AccessUnitFixer,
    ParameterSets,
    StreamLayout,
    join_annexb,
    nal_types,
    parse_extradata,
    split_annexb,
)

SPS = bytes([0x67, 0x64, 0x00, 0x1E, 0xAC, 0xB4])  # High 3.0
PPS = bytes([0x68, 0xCE, 0x3C, 0xB0])
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x21])
SLICE = bytes([0x41, 0x9A, 0x00, 0x00, 0x03, 0x01])  # with an emulation prevention byte
AUD = bytes([0x09, 0xF0])
FILLER = bytes([0x0C, 0xFF, 0xFF, 0x80])
SEI = bytes([0x06, 0x05, 0x01, 0x00, 0x80])


def avcc(units: list[bytes], length_size: int = 4) -> bytes:
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in units)


def test_annexb_splits_on_three_and_four_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01" + AUD + b"\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + IDR
    assert split_annexb(data) == [AUD, SPS, IDR]
    assert split_annexb(join_annexb([SLICE])) == [SLICE]


def test_parameter_sets_come_from_the_sdp_extradata_and_go_before_each_idr() -> None:
    fixer = AccessUnitFixer(parse_extradata(join_annexb([SPS, PPS])))
    assert fixer.parameter_sets == ParameterSets(SPS, (PPS,))
    assert fixer.parameter_sets.profile_level_id == "64001e"
    assert fixer.parameter_sets.description == "H.264 High 3.0"
    idr = fixer.fix(join_annexb([IDR]))
    assert idr.keyframe
    assert nal_types(idr.data) == [NAL_SPS, NAL_PPS, NAL_IDR]
    delta = join_annexb([SLICE])
    assert fixer.fix(delta) == type(idr)(delta, keyframe=False)  # passed as it came
    assert fixer.inserted == 1


def test_an_idr_that_has_them_is_left_alone_and_new_ones_are_kept() -> None:
    fixer = AccessUnitFixer(parse_extradata(join_annexb([SPS, PPS])))
    new_sps = bytes([0x67, 0x64, 0x00, 0x28, 0xAC])  # the camera switched to level 4.0
    inband = join_annexb([new_sps, PPS, IDR])
    assert fixer.fix(inband).data == inband
    assert nal_types(fixer.fix(join_annexb([IDR])).data) == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert split_annexb(fixer.fix(join_annexb([IDR])).data)[0] == new_sps
    assert fixer.parameter_sets is not None
    assert fixer.parameter_sets.profile_level_id == "640028"


def test_mp4_samples_become_annexb_with_the_avcc_parameter_sets() -> None:
    record = (
        bytes([1, 0x64, 0x00, 0x1E, 0xFF, 0xE1])
        + len(SPS).to_bytes(2, "big")
        + SPS
        + bytes([1])
        + len(PPS).to_bytes(2, "big")
        + PPS
    )
    layout = parse_extradata(record)
    assert layout == StreamLayout(4, ParameterSets(SPS, (PPS,)))
    fixer = AccessUnitFixer(layout)
    assert nal_types(fixer.fix(avcc([IDR])).data) == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert fixer.fix(avcc([SLICE])).data == join_annexb([SLICE])
    with pytest.raises(ValueError, match="runs past the end"):
        fixer.fix(avcc([SLICE])[:-2])


def test_an_idr_without_known_parameter_sets_is_no_starting_point() -> None:
    fixer = AccessUnitFixer(parse_extradata(None))
    assert not fixer.fix(join_annexb([IDR])).keyframe
    assert fixer.fix(join_annexb([SPS, PPS, IDR])).keyframe
    assert nal_types(fixer.fix(join_annexb([IDR])).data) == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert nal_types(fixer.fix(join_annexb([SLICE])).data) == [NAL_SLICE]


def test_delimiters_and_filler_never_reach_a_viewer() -> None:
    """One packet less per picture and viewer: RTP's marker ends an access unit."""
    fixer = AccessUnitFixer(parse_extradata(join_annexb([SPS, PPS])))
    idr = fixer.fix(join_annexb([AUD, SEI, IDR, FILLER]))
    assert idr.keyframe
    assert nal_types(idr.data) == [NAL_SPS, NAL_PPS, NAL_SEI, NAL_IDR]
    assert fixer.fix(join_annexb([AUD, SPS, PPS, IDR])).data == join_annexb([SPS, PPS, IDR])
    delta = fixer.fix_units([AUD, SLICE, FILLER])
    assert delta == type(idr)(join_annexb([SLICE]), keyframe=False)
    assert NAL_AUD not in nal_types(fixer.fix(join_annexb([AUD, AUD])).data)
