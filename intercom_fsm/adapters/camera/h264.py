"""H.264 access units as WebRTC needs them: Annex-B, with the parameter sets
(SPS/PPS) in band before every IDR picture.

Cameras differ in how they carry H.264. RTSP cameras often send the SPS and
PPS only once, in the SDP's ``sprop-parameter-sets`` (FFmpeg hands them over
as the stream's extradata), and never again in band; MP4 files keep them in
an ``avcC`` box and store each NAL unit behind a length instead of a start
code. A WebRTC receiver that joins, or recovers, at an IDR without its SPS
and PPS cannot decode anything, and aiortc's packetizer only splits on start
codes. :class:`AccessUnitFixer` turns whatever the source gives into
Annex-B access units that carry the latest parameter sets before every IDR,
keeping parameter sets that change in band.

Access unit delimiters and filler data are dropped: RTP marks where an access
unit ends (RFC 6184), decoders need neither, and each delimiter would be a
packet of its own to every viewer (many cameras, GStreamer's among them, send
one before every picture: a quarter of a 640x480 stream's packets).

The ``profile-level-id`` a viewer's SDP must accept is read from the SPS
(its profile, constraint flags and level bytes).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_FILLER = 12
DROPPED = frozenset({NAL_AUD, NAL_FILLER})
"""NAL unit types no viewer gets."""
START_CODE = b"\x00\x00\x00\x01"
_SHORT_START = b"\x00\x00\x01"

PROFILE_NAMES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10"}


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte stream, without their start codes.

    Emulation prevention guarantees that ``00 00 01`` never occurs inside a
    NAL unit, so searching for it is exact; the zero byte of a four-byte start
    code is trailing zero data of the unit before it and is cut off."""
    units: list[bytes] = []
    start = data.find(_SHORT_START)
    while start >= 0:
        begin = start + 3
        following = data.find(_SHORT_START, begin)
        end = len(data) if following < 0 else following
        unit = data[begin:end].rstrip(b"\x00") if following >= 0 else data[begin:end]
        if unit:
            units.append(unit)
        start = following
    return units


def split_length_prefixed(data: bytes, length_size: int) -> list[bytes]:
    """The NAL units of an ``avcC``-style sample (each behind its big-endian length)."""
    units: list[bytes] = []
    position = 0
    while position + length_size <= len(data):
        length = int.from_bytes(data[position : position + length_size], "big")
        position += length_size
        if length == 0 or position + length > len(data):
            raise ValueError("an H.264 NAL unit runs past the end of its packet")
        units.append(data[position : position + length])
        position += length
    return units


def join_annexb(units: Sequence[bytes]) -> bytes:
    return b"".join(START_CODE + unit for unit in units)


@attrs.frozen
class ParameterSets:
    sps: bytes
    pps: tuple[bytes, ...]

    @property
    def profile_level_id(self) -> str:
        """Six hex digits, as SDP's ``profile-level-id``: ``640028`` is High 4.0."""
        return self.sps[1:4].hex()

    @property
    def description(self) -> str:
        profile, level = self.sps[1], self.sps[3]
        name = PROFILE_NAMES.get(profile, f"profile {profile}")
        if profile == 66 and self.sps[2] & 0x40:
            name = "Constrained Baseline"
        return f"H.264 {name} {level // 10}.{level % 10}"


@attrs.frozen
class StreamLayout:
    """How a source's packets are framed, and the parameter sets it declared
    out of band."""

    length_size: int | None
    """None: Annex-B start codes; otherwise the size of each NAL unit's length."""
    parameter_sets: ParameterSets | None


def parse_extradata(extradata: bytes | None) -> StreamLayout:
    """The framing and parameter sets declared in a stream's extradata: an
    ``avcC`` record (MP4, MKV) or Annex-B NAL units (RTSP, raw H.264)."""
    if not extradata:
        return StreamLayout(None, None)
    if extradata[0] == 1 and len(extradata) >= 7:
        return _parse_avcc(extradata)
    units = split_annexb(extradata)
    sps = next((u for u in units if nal_type(u) == NAL_SPS and len(u) >= 4), None)
    pps = tuple(u for u in units if nal_type(u) == NAL_PPS)
    return StreamLayout(None, ParameterSets(sps, pps) if sps and pps else None)


def _parse_avcc(record: bytes) -> StreamLayout:
    length_size = (record[4] & 0x03) + 1
    position = 5
    sets: list[list[bytes]] = []
    for count_mask in (0x1F, 0xFF):
        if position >= len(record):
            raise ValueError("the avcC record is cut short")
        count = record[position] & count_mask
        position += 1
        found: list[bytes] = []
        for _ in range(count):
            size = int.from_bytes(record[position : position + 2], "big")
            position += 2
            found.append(record[position : position + size])
            position += size
        sets.append(found)
    sps_list, pps_list = sets
    if position > len(record) or not sps_list or not pps_list or len(sps_list[0]) < 4:
        raise ValueError("the avcC record has no usable SPS and PPS")
    return StreamLayout(length_size, ParameterSets(sps_list[0], tuple(pps_list)))


@attrs.frozen
class AccessUnit:
    data: bytes
    """Annex-B, parameter sets before an IDR."""
    keyframe: bool
    """It holds an IDR picture: a decoder can start here."""
    nal_units: tuple[bytes, ...] = attrs.field(default=(), repr=False, eq=False)
    """The same NAL units without start codes, when at hand (empty otherwise):
    RTP payloads are cut from these without looking for start codes again.
    A view of ``data``, so not compared."""


class AccessUnitFixer:
    """Rewrites one source's packets into :class:`AccessUnit` s.

    Parameter sets seen in band replace the declared ones from then on (a
    camera that changes resolution sends new ones before its next IDR)."""

    def __init__(self, layout: StreamLayout) -> None:
        self._length_size = layout.length_size
        declared = layout.parameter_sets
        self._sps: bytes | None = declared.sps if declared else None
        self._pps: tuple[bytes, ...] = declared.pps if declared else ()
        self.inserted = 0
        """IDRs that came without their parameter sets and got them here."""

    @property
    def parameter_sets(self) -> ParameterSets | None:
        if self._sps is None or not self._pps:
            return None
        return ParameterSets(self._sps, self._pps)

    def fix(self, data: bytes) -> AccessUnit:
        if self._length_size is not None:
            return self.fix_units(split_length_prefixed(data, self._length_size))
        return self.fix_units(split_annexb(data), data)

    def fix_units(self, units: Sequence[bytes], annexb: bytes | None = None) -> AccessUnit:
        """``units``: one access unit's NAL units, without start codes;
        ``annexb``: the same already joined in Annex-B, when at hand."""
        types = [nal_type(unit) for unit in units]
        if not DROPPED.isdisjoint(types):
            units = [u for u, t in zip(units, types, strict=True) if t not in DROPPED]
            types = [t for t in types if t not in DROPPED]
            annexb = None
        self._remember(units, types)
        if NAL_IDR not in types:
            return _unit(units, annexb, keyframe=False)
        first_idr = types.index(NAL_IDR)
        before = types[:first_idr]
        if NAL_SPS in before and NAL_PPS in before:
            return _unit(units, annexb, keyframe=True)
        if self._sps is None or not self._pps:
            # Nothing to insert yet: the IDR goes out as it came, and the
            # viewer waits for one it can decode.
            return _unit(units, None, keyframe=False)
        # First (the delimiter that would come before them is dropped), so
        # before SEI and slices.
        kept = [u for u, t in zip(units, types, strict=True) if t not in (NAL_SPS, NAL_PPS)]
        self.inserted += 1
        return _unit([self._sps, *self._pps, *kept], None, keyframe=True)

    def _remember(self, units: Sequence[bytes], types: list[int]) -> None:
        if NAL_SPS not in types and NAL_PPS not in types:
            return
        pps: list[bytes] = []
        for unit, kind in zip(units, types, strict=True):
            if kind == NAL_SPS and len(unit) >= 4:
                self._sps = unit
            elif kind == NAL_PPS:
                pps.append(unit)
        if pps:
            self._pps = tuple(pps)


def _unit(units: Sequence[bytes], annexb: bytes | None, keyframe: bool) -> AccessUnit:
    joined = annexb if annexb is not None else join_annexb(units)
    return AccessUnit(joined, keyframe, tuple(units))


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex-B access unit, in order (tests, logs)."""
    return [nal_type(unit) for unit in split_annexb(data)]
