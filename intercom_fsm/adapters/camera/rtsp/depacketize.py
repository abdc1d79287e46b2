"""RTP packets of H.264 back into access units (RFC 3550, RFC 6184), sans I/O.

Packetization modes 0 and 1 carry single NAL units, STAP-A aggregates and
FU-A fragments. An access unit ends with the marker bit, or when a packet of
the next picture (another timestamp) arrives first. A lost packet (a gap in
the sequence numbers: over UDP) breaks the picture it belonged to and every
picture after it until the next IDR, which would only decode with its
references missing: those are dropped, and the stream resumes at that IDR,
as a WebRTC receiver waits for a keyframe after a loss.
"""

from __future__ import annotations

import attrs

from intercom_fsm.adapters.camera.h264 import NAL_IDR

RTP_VERSION = 2
STAP_A = 24
FU_A = 28
MAX_ACCESS_UNIT = 8 * 1024 * 1024
"""A picture larger than this is no camera's: it is dropped as broken."""


@attrs.frozen
class RtpPacket:
    sequence: int
    timestamp: int
    marker: bool
    payload_type: int
    ssrc: int
    payload: bytes = attrs.field(repr=False)


def parse_rtp(data: bytes) -> RtpPacket | None:
    """The packet's header and payload; None for what is no RTP packet."""
    if len(data) < 12 or data[0] >> 6 != RTP_VERSION:
        return None
    start = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:  # a header extension: skip it
        if len(data) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data)
    if data[0] & 0x20:  # padding: its count is the last byte
        end -= data[-1]
    if end < start:
        return None
    return RtpPacket(
        sequence=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        marker=bool(data[1] & 0x80),
        payload_type=data[1] & 0x7F,
        ssrc=int.from_bytes(data[8:12], "big"),
        payload=data[start:end],
    )


@attrs.frozen
class DepacketizedUnit:
    timestamp: int
    """The RTP timestamp of the picture (90 kHz)."""
    nal_units: tuple[bytes, ...] = attrs.field(repr=False)
    """Without start codes."""
    has_idr: bool


class H264Depacketizer:
    """Feed it a stream's packets in arrival order; complete pictures come out."""

    def __init__(self, payload_type: int) -> None:
        self._payload_type = payload_type
        self._expected: int | None = None
        self._timestamp: int | None = None
        self._units: list[bytes] = []
        self._size = 0
        self._fragment: bytearray | None = None
        self._has_idr = False
        self._broken = False
        self._waiting_for_idr = False
        self.packets = 0
        self.lost = 0
        """Packets missing from the sequence so far."""
        self.dropped = 0
        """Pictures dropped: broken, or waiting for an IDR after a loss."""

    def push(self, packet: RtpPacket) -> list[DepacketizedUnit]:
        """The pictures ``packet`` completes (none, one, or, when it starts the
        next one before the last ended, two)."""
        if packet.payload_type != self._payload_type:
            return []
        self.packets += 1
        done: list[DepacketizedUnit] = []
        if self._expected is not None and packet.sequence != self._expected:
            missing = (packet.sequence - self._expected) & 0xFFFF
            if missing >= 0x8000:
                return []  # late or repeated: its picture is gone already
            self.lost += missing
            self._broken = True
            self._fragment = None
        self._expected = (packet.sequence + 1) & 0xFFFF
        if self._timestamp is not None and packet.timestamp != self._timestamp:
            done += self._finish()
        self._timestamp = packet.timestamp
        self._take(packet.payload)
        if packet.marker:
            done += self._finish()
        return done

    def _take(self, payload: bytes) -> None:
        if not payload:
            return
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._add(payload)
        elif kind == STAP_A:
            position = 1
            while position + 2 <= len(payload):
                size = int.from_bytes(payload[position : position + 2], "big")
                position += 2
                if size == 0 or position + size > len(payload):
                    self._broken = True
                    return
                self._add(payload[position : position + size])
                position += size
        elif kind == FU_A and len(payload) >= 2:
            header = payload[1]
            if header & 0x80:  # start
                self._fragment = bytearray([payload[0] & 0xE0 | header & 0x1F])
            elif self._fragment is None:
                self._broken = True  # the start went missing
                return
            if len(self._fragment) + len(payload) > MAX_ACCESS_UNIT:
                self._fragment = None
                self._broken = True
                return
            self._fragment += payload[2:]
            if header & 0x40:  # end
                unit, self._fragment = bytes(self._fragment), None
                self._add(unit)
        else:
            self._broken = True  # not in packetization modes 0 and 1

    def _add(self, unit: bytes) -> None:
        self._size += len(unit)
        if self._size > MAX_ACCESS_UNIT:
            self._broken = True
            return
        if unit[0] & 0x1F == NAL_IDR:
            self._has_idr = True
        self._units.append(unit)

    def _finish(self) -> list[DepacketizedUnit]:
        units, has_idr, timestamp = tuple(self._units), self._has_idr, self._timestamp
        broken = self._broken or self._fragment is not None  # a NAL unit cut short
        self._units = []
        self._size = 0
        self._fragment = None
        self._has_idr = self._broken = False
        if broken:
            self._waiting_for_idr = True
            self.dropped += 1
            return []
        if not units or timestamp is None:
            return []
        if self._waiting_for_idr and not has_idr:
            self.dropped += 1
            return []
        self._waiting_for_idr = False
        return [DepacketizedUnit(timestamp, units, has_idr)]
