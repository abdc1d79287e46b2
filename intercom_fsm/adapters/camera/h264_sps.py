"""What an H.264 sequence parameter set says about the pictures (ITU-T H.264
section 7.3.2.1.1 and annex E): their size, and whether pictures may come out
of order (B-frames), which a WebRTC viewer, playing pictures as they arrive,
cannot take.

FFmpeg learns both by probing a stream; a camera read without FFmpeg
(:mod:`intercom_fsm.adapters.camera.rtsp`) learns them here, from the SPS its
SDP declares or its first IDR carries, and from the slice types of its first
pictures (:func:`slice_type`).
"""

from __future__ import annotations

import attrs

HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
B_SLICE = 1
"""``slice_type`` modulo 5 of a B slice."""


@attrs.frozen
class SequenceInfo:
    width: int
    height: int
    reorder_frames: int | None
    """``max_num_reorder_frames`` from the VUI; None when the SPS does not say."""

    @property
    def reorders(self) -> bool | None:
        """Whether pictures may come out of order; None: unknown from the SPS alone."""
        return None if self.reorder_frames is None else self.reorder_frames > 0


def unescape(data: bytes) -> bytes:
    """The RBSP of a NAL unit's payload: emulation prevention bytes removed."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._position = 0

    def u(self, count: int) -> int:
        if self._position + count > self._size:
            raise ValueError("the parameter set ends early")
        self._position += count
        return (self._value >> (self._size - self._position)) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("an Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def parse_sps(nal_unit: bytes) -> SequenceInfo:
    """``nal_unit``: an SPS, its one-byte NAL header included. Raises
    ``ValueError`` for one that cannot be read."""
    if len(nal_unit) < 4 or nal_unit[0] & 0x1F != 7:
        raise ValueError("not a sequence parameter set")
    bits = _Bits(unescape(nal_unit[1:]))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma_format = 1
    separate_planes = False
    if profile in HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format > 3:
            raise ValueError("a chroma format that does not exist")
        if chroma_format == 3:
            separate_planes = bool(bits.u(1))
        bits.ue()  # bit depth of luma
        bits.ue()  # and chroma
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    order_type = bits.ue()
    if order_type == 0:
        bits.ue()
    elif order_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    elif order_type != 2:
        raise ValueError("a picture order count type that does not exist")
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frames_only = bits.u(1)
    if not frames_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.u(1) else (0, 0, 0, 0)
    array_type = 0 if separate_planes else chroma_format
    crop_x = 1 if array_type in (0, 3) else 2
    crop_y = (1 if array_type in (0, 2, 3) else 2) * (2 - frames_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frames_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise ValueError("a picture cropped to nothing")
    reorder: int | None = None
    try:
        if bits.u(1):  # vui_parameters_present_flag
            reorder = _reorder_frames(bits)
    except ValueError:
        reorder = None  # a VUI cut short says nothing; the size stands
    return SequenceInfo(width, height, reorder)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def _reorder_frames(bits: _Bits) -> int | None:
    if bits.u(1) and bits.u(8) == 255:  # aspect ratio, extended SAR
        bits.u(32)
    if bits.u(1):  # overscan
        bits.u(1)
    if bits.u(1):  # video signal type
        bits.u(4)
        if bits.u(1):
            bits.u(24)
    if bits.u(1):  # chroma location
        bits.ue()
        bits.ue()
    if bits.u(1):  # timing
        bits.u(32)
        bits.u(32)
        bits.u(1)
    nal_hrd = bits.u(1)
    if nal_hrd:
        _skip_hrd(bits)
    vcl_hrd = bits.u(1)
    if vcl_hrd:
        _skip_hrd(bits)
    if nal_hrd or vcl_hrd:
        bits.u(1)  # low_delay_hrd_flag
    bits.u(1)  # pic_struct_present_flag
    if not bits.u(1):  # bitstream_restriction_flag
        return None
    bits.u(1)
    for _ in range(4):
        bits.ue()
    return bits.ue()  # max_num_reorder_frames


def _skip_hrd(bits: _Bits) -> None:
    count = bits.ue() + 1
    if count > 32:
        raise ValueError("more than 32 CPB specifications")
    bits.u(8)
    for _ in range(count):
        bits.ue()
        bits.ue()
        bits.u(1)
    bits.u(20)


def slice_type(nal_unit: bytes) -> int | None:
    """The slice type (0 P, 1 B, 2 I, 3 SP, 4 SI) of a coded slice NAL unit
    (types 1 and 5), from the start of its header; None for other units or
    one that ends too early."""
    if not nal_unit or nal_unit[0] & 0x1F not in (1, 5):
        return None
    try:
        bits = _Bits(unescape(nal_unit[1:16]))
        bits.ue()  # first_mb_in_slice
        return bits.ue() % 5
    except ValueError:
        return None
