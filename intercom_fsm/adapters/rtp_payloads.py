"""A shared encoding's packets cut into RTP payloads once, for all its viewers.

Every viewer of a shared encoding (the camera's own H.264, a VP8 layer, the
shared H.264 encoder, the microphone's Opus) gets the same packets; cutting
each into RTP payloads (aiortc's packetizer for the codec: FU-A and STAP-A,
VP8's payload descriptor; for an H.264 access unit whose NAL units are at
hand, :mod:`.h264_payloads`) gives the same payloads for each, so it is done
once, as the packet is handed out, in the order the packets come: a VP8
stream's picture IDs then count its pictures whoever receives them. Each
viewer's RTP loop (:mod:`.rtp_sender`) finds a packet's payloads here by the
packet itself; a packet no longer here (long gone) is cut again by the
viewer's own packetizer.
"""

from __future__ import annotations

import collections
import fractions
from collections.abc import Sequence
from typing import Any

import av
from aiortc.codecs import get_encoder
from aiortc.mediastreams import convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from intercom_fsm.adapters import h264_payloads

KEPT = 32
"""Packets whose payloads are kept: more than a viewer's queue holds."""

Payloads = tuple[list[bytes], int]
"""The RTP payloads of one packet and its timestamp on the codec's clock."""

_CLOCK_RATES = {"video/h264": 90_000, "video/vp8": 90_000, "audio/opus": 48_000}


class SharedPayloads:
    """The payloads of one stream's latest packets (one codec; for VP8, one
    sequence of picture IDs)."""

    def __init__(self, mime_type: str) -> None:
        mime = mime_type.lower()
        clock_rate = _CLOCK_RATES[mime]
        self._clock = fractions.Fraction(1, clock_rate)
        self._h264 = mime == "video/h264"
        codec = RTCRtpCodecParameters(mimeType=mime_type, clockRate=clock_rate)
        self._packer = get_encoder(codec)
        self._made: collections.OrderedDict[int, tuple[av.Packet[Any], Payloads]] = (
            collections.OrderedDict()
        )

    def add(self, packet: av.Packet[Any], nal_units: Sequence[bytes] = ()) -> None:
        """Cut ``packet`` (handed out now, after the ones before it). An H.264
        packet's ``nal_units``, when given, are cut directly
        (:mod:`.h264_payloads`), the packet's bytes are not read again."""
        if self._h264 and nal_units and packet.pts is not None and packet.time_base is not None:
            timestamp = convert_timebase(packet.pts, packet.time_base, self._clock)
            made: Payloads = (h264_payloads.payloads(nal_units), timestamp)
        else:
            made = self._packer.pack(packet)
        self.keep(packet, made)

    def keep(self, packet: av.Packet[Any], made: Payloads) -> None:
        """``packet`` (handed out now) as ``made``, cut already by its encoding."""
        self._made[id(packet)] = (packet, made)
        if len(self._made) > KEPT:
            self._made.popitem(last=False)

    def get(self, packet: av.Packet[Any]) -> Payloads | None:
        # The entry holds the packet itself, so its id cannot have been reused.
        found = self._made.get(id(packet))
        return found[1] if found is not None and found[0] is packet else None
