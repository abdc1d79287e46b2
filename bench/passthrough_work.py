"""What the daemon does with each picture of an RTSP camera it passes through,
and nothing else: the work :mod:`bench.wakeup_floor` can give its clients.

:func:`camera_pictures` makes an H.264 camera's stream as an RTSP server
writes it on its connection (RFC 2326 section 10.12, interleaved): for each
picture an access unit delimiter's packet, then the picture's slice in FU-A
fragments (RFC 6184), with the parameter sets in a STAP-A before each IDR.

:class:`PassthroughWork` takes those bytes as they arrive and does with them
what the daemon does, with the daemon's own functions: the RTSP framing, the
RTP header, the depacketizing, the parameter sets put before each IDR, the
payloads cut once, and for each viewer its RTP header with the ``mid`` and
``abs-send-time`` extensions, SRTP with that viewer's own session, and one
datagram a packet. What the daemon does besides is left out: RTCP, aiortc's
transports, the viewers' queues, the GOP kept for a decoder, the metrics.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable, Iterator

from pylibsrtp import Policy, Session

from intercom_fsm.adapters.camera.h264 import AccessUnitFixer, StreamLayout
from intercom_fsm.adapters.camera.rtsp.depacketize import (
    DepacketizedUnit,
    H264Depacketizer,
    parse_rtp,
)
from intercom_fsm.adapters.camera.rtsp.messages import IncomingStream, Interleaved
from intercom_fsm.adapters.h264_payloads import payloads
from intercom_fsm.adapters.rtp_sender import HeaderExtensions, ntp_time

CAMERA_PAYLOAD_TYPE = 96
VIEWER_PAYLOAD_TYPE = 102
"""What a browser's offer usually numbers H.264 with."""
CAMERA_SSRC = 0x1234_5678
GOP = 30
"""Pictures from one IDR to the next (2 s at 15 fps, as the bench camera)."""
FRAGMENT_BYTES = 1386
"""A camera's FU-A fragment: packets of 1400 bytes with their RTP header."""
SPS = bytes([0x67, 0x64, 0x00, 0x1E, 0xAC, 0xD9, 0x40, 0xA0, 0x3D, 0xA1, 0x00])
PPS = bytes([0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0])
DELIMITER = bytes([0x09, 0xF0])
DELIMITER_PACKET_BYTES = 4 + 12 + len(DELIMITER)
"""The delimiter's packet as written on the connection."""
SRTP_KEY_BYTES = 30
"""Key and salt of SRTP's default profile (AES-128 counter mode, HMAC-SHA1-80)."""
STAP_A = 24
FU_A = 28

_RTP_HEADER = struct.Struct("!BBHII")
_EXTENSIONS = HeaderExtensions(mid_id=1, mid=b"0", abs_send_time_id=2)


def camera_pictures(picture_bytes: int, fps: float) -> Iterator[tuple[bytes, bytes]]:
    """Endlessly, per picture: the delimiter's packet, then the picture's
    packets, each as written on the camera's RTSP connection. A picture's
    slice is ``picture_bytes`` long (random, so nothing compresses it)."""
    if picture_bytes < 2:
        raise ValueError("a picture's slice has a header and a body")
    step = round(90_000 / fps)
    sequence = timestamp = 0

    def packet(marker: bool, payload: bytes) -> bytes:
        nonlocal sequence
        rtp = _RTP_HEADER.pack(
            0x80,
            (0x80 if marker else 0) | CAMERA_PAYLOAD_TYPE,
            sequence,
            timestamp,
            CAMERA_SSRC,
        )
        sequence = (sequence + 1) & 0xFFFF
        return b"$\x00" + (len(rtp) + len(payload)).to_bytes(2, "big") + rtp + payload

    for index in itertools.count():
        delimiter = packet(False, DELIMITER)
        nal_header = 0x65 if index % GOP == 0 else 0x41  # an IDR slice, or a P slice
        packets: list[bytes] = []
        if nal_header == 0x65:
            sets = b"".join(len(unit).to_bytes(2, "big") + unit for unit in (SPS, PPS))
            packets.append(packet(False, bytes([STAP_A]) + sets))
        body = os.urandom(picture_bytes - 1)
        chunks = [body[at : at + FRAGMENT_BYTES] for at in range(0, len(body), FRAGMENT_BYTES)]
        for number, chunk in enumerate(chunks):
            last = number == len(chunks) - 1
            fu_header = (0x80 if number == 0 else 0) | (0x40 if last else 0) | nal_header & 0x1F
            packets.append(packet(last, bytes([nal_header & 0xE0 | FU_A, fu_header]) + chunk))
        yield delimiter, b"".join(packets)
        timestamp = (timestamp + step) & 0xFFFF_FFFF


class _Viewer:
    def __init__(self, ssrc: int, key: bytes) -> None:
        self.ssrc = ssrc
        self.sequence = 0
        self.srtp = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))


class PassthroughWork:
    """Feed it the camera's bytes as they arrive (:meth:`received`); each
    whole picture goes to ``send`` as SRTP datagrams, once per viewer. Viewer
    ``n`` (from 0) sends with SSRC ``n + 1``, SRTP keyed with ``key``."""

    def __init__(self, send: Callable[[bytes], object], viewers: int, key: bytes) -> None:
        self._send = send
        self._viewers = [_Viewer(number + 1, key) for number in range(viewers)]
        self._incoming = IncomingStream()
        self._depacketizer = H264Depacketizer(CAMERA_PAYLOAD_TYPE)
        self._fixer = AccessUnitFixer(StreamLayout(None, None))
        self.frames = 0
        """Pictures sent on to every viewer."""

    def received(self, data: bytes) -> None:
        for message in self._incoming.feed(data):
            if type(message) is Interleaved and message.channel == 0:
                packet = parse_rtp(message.data)
                if packet is not None:
                    for unit in self._depacketizer.push(packet):
                        self._picture(unit)

    def _picture(self, unit: DepacketizedUnit) -> None:
        access_unit = self._fixer.fix_units(unit.nal_units)
        if not access_unit.data:
            return  # a delimiter alone
        cut = payloads(access_unit.nal_units)
        extensions = _EXTENSIONS.block(ntp_time())
        last = len(cut) - 1
        send = self._send
        for viewer in self._viewers:
            for index, payload in enumerate(cut):
                header = _RTP_HEADER.pack(
                    0x90,
                    (0x80 if index == last else 0) | VIEWER_PAYLOAD_TYPE,
                    viewer.sequence,
                    unit.timestamp,
                    viewer.ssrc,
                )
                viewer.sequence = (viewer.sequence + 1) & 0xFFFF
                send(viewer.srtp.protect(header + extensions + payload))
        self.frames += 1
