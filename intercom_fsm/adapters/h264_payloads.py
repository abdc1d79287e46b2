"""One H.264 access unit's NAL units cut into RTP payloads (RFC 6184,
packetization mode 1), straight from the units.

aiortc's packetizer takes the access unit as an Annex-B byte stream and finds
its NAL units again by scanning for start codes in Python, which is most of
what it costs. An access unit read from an RTSP camera already comes as its
NAL units (:mod:`.camera.rtsp.depacketize`), so :func:`payloads` cuts them
directly, into what aiortc's packetizer would send: a unit that fits alone
in a payload of :data:`PAYLOAD_MAX` bytes goes as it is, consecutive small ones
together in a STAP-A, and a larger one in FU-A fragments of nearly equal
size, the larger ones first.
"""

from __future__ import annotations

from collections.abc import Sequence

PAYLOAD_MAX = 1300
"""Bytes of one RTP payload at most: aiortc's own limit for H.264."""
STAP_A = 24
FU_A = 28
_FU_A_HEADER = 2
_STAP_A_HEADER = 1
_LENGTH_FIELD = 2


def payloads(units: Sequence[bytes]) -> list[bytes]:
    """``units`` (an access unit's NAL units, without start codes, none empty)
    as RTP payloads, in order."""
    cut: list[bytes] = []
    group: list[bytes] = []
    group_size = _STAP_A_HEADER
    for unit in units:
        if len(unit) > PAYLOAD_MAX:
            _flush(group, cut)
            group, group_size = [], _STAP_A_HEADER
            cut += _fragments(unit)
            continue
        size = _LENGTH_FIELD + len(unit)
        if group and group_size + size > PAYLOAD_MAX:
            _flush(group, cut)
            group, group_size = [], _STAP_A_HEADER
        group.append(unit)
        group_size += size
    _flush(group, cut)
    return cut


def _flush(group: list[bytes], cut: list[bytes]) -> None:
    if len(group) == 1:
        cut.append(group[0])
    elif group:
        # The aggregate's F bit is set if any unit's is, its NRI is the
        # highest of theirs (RFC 6184 5.7).
        forbidden = max(unit[0] & 0x80 for unit in group)
        importance = max(unit[0] & 0x60 for unit in group)
        cut.append(
            bytes([forbidden | importance | STAP_A])
            + b"".join(len(unit).to_bytes(2, "big") + unit for unit in group)
        )


def _fragments(unit: bytes) -> list[bytes]:
    indicator = bytes([unit[0] & 0xE0 | FU_A])
    kind = unit[0] & 0x1F
    body = memoryview(unit)[1:]
    count = -(-len(body) // (PAYLOAD_MAX - _FU_A_HEADER))
    small, larger = divmod(len(body), count)
    fragments: list[bytes] = []
    position = 0
    for index in range(count):
        size = small + 1 if index < larger else small
        header = kind | (0x80 if index == 0 else 0) | (0x40 if index == count - 1 else 0)
        fragments.append(indicator + bytes([header]) + body[position : position + size])
        position += size
    return fragments
