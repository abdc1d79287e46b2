"""A shared encoding's packets cut into RTP payloads once, for all its viewers.

Every viewer of a shared encoding (the camera's own H.264, a VP8 layer, the
shared H.264 encoder, the microphone's Opus) gets the same packets; cutting
each into RTP payloads (aiortc's packetizer for the codec: FU-A and STAP-A,
VP8's payload descriptor) gives the same payloads for each, so it is done
once, as the packet is handed out, in the order the packets come: a VP8
stream's picture IDs then count its pictures whoever receives them. Each
viewer's RTP loop (:mod:`.rtp_sender`) finds a packet's payloads here by the
packet itself; a packet no longer here (long gone) is cut again by the
viewer's own packetizer.
"""

from __future__ import annotations

import collections
from typing import Any

import av
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

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
        codec = RTCRtpCodecParameters(mimeType=mime_type, clockRate=_CLOCK_RATES[mime])
        self._packer = get_encoder(codec)
        self._made: collections.OrderedDict[int, tuple[av.Packet[Any], Payloads]] = (
            collections.OrderedDict()
        )

    def add(self, packet: av.Packet[Any]) -> None:
        """Cut ``packet`` (handed out now, after the ones before it)."""
        self._made[id(packet)] = (packet, self._packer.pack(packet))
        if len(self._made) > KEPT:
            self._made.popitem(last=False)

    def get(self, packet: av.Packet[Any]) -> Payloads | None:
        # The entry holds the packet itself, so its id cannot have been reused.
        found = self._made.get(id(packet))
        return found[1] if found is not None and found[0] is packet else None
