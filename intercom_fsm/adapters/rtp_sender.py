"""The RTP loop of a viewer fed by a shared encoding: lean per packet.

aiortc's :class:`~aiortc.RTCRtpSender` runs one loop per viewer that, for
every RTP packet, builds an ``RtpPacket`` object, reads its datetime-based NTP
clock twice and serializes the header extensions through a generic map. For a
viewer of a shared encoding (the camera's own H.264, the shared VP8 and H.264
encoders, the microphone's Opus) the picture or the sound is already encoded
once for everyone, so that bookkeeping is most of what one more viewer costs
the event loop.

:func:`send_with_lean_loop` gives one sender a loop of its own for a track of
already encoded packets (:class:`av.Packet`): each packet's payloads are the
ones its shared encoding cut once for every viewer (:mod:`.rtp_payloads`),
else aiortc's packetizer for the negotiated codec cuts them, as aiortc's loop
does; the header and its extensions (``mid``, ``abs-send-time``) are packed directly,
the wall clock read once per frame; sent packets are kept as their parts for
retransmission (RTX or plain, as negotiated); the sender report's counters
are kept where aiortc's RTCP loop reads them. What reaches the wire has the
same form, encrypted with the same SRTP session and sent on the same ICE
pair; aiortc's RTCP loop and its NACK and PLI handling are untouched.

A track whose encoding hands its frames out on the loop (the camera's own
H.264, :mod:`.camera.passthrough`) may offer ``send_directly``: the loop then
gives it :meth:`LeanLoop.send_now`, which the encoding calls with each frame
as it hands it out, and the frame is encrypted and sent in that same call
(:mod:`.rtp_direct`), with no queue, no task switch and none of aiortc's
coroutines in between. Other tracks are read with ``recv()`` and their
packets sent through aiortc's DTLS transport.

There is no API for this in aiortc, so the loop takes the sender's place in
its own private state (the start and exit events, the report counters): when
any of it is missing (an aiortc whose sender changed), the sender keeps
aiortc's loop, which sends the same media at a higher cost.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import av
from aiortc import RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.rtp_direct import wire_of

logger = logging.getLogger(__name__)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
HISTORY_SIZE = 128
"""Packets kept for retransmission, as many as aiortc keeps."""
NTP_UNIX_OFFSET_NS = 2_208_988_800 * 1_000_000_000
"""From the NTP epoch (1900) to the Unix epoch (1970), in nanoseconds."""
NO_TRACK_WAIT = 0.02
"""How often a sender without a track looks again (aiortc's own pace)."""

_HEADER = struct.Struct("!BBHII")
_SENDER_STATE = "_RTCRtpSender__"
_EVENTS = ("rtp_started", "rtp_exited")
_REPORT_COUNTERS = ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count")
_SENDER_ATTRIBUTES = ("send", "_run_rtp", "_retransmit", "_ssrc", "_rtx_ssrc", "_enabled")


def ntp_time() -> int:
    """Now on the 64-bit NTP clock (RFC 3550 section 4), from the wall clock."""
    return ((time.time_ns() + NTP_UNIX_OFFSET_NS) << 32) // 1_000_000_000


def _random_sequence() -> int:
    # In the lower half, as aiortc starts: far from a wrap, which SRTP's
    # packet index must see in order.
    return secrets.randbelow(0x8000)


@attrs.frozen
class HeaderExtensions:
    """The RTP header extension block a sender writes (RFC 8285): its
    ``mid``, constant, and ``abs-send-time``, 6.18 fixed-point seconds of the
    NTP clock in 3 bytes; the one-byte form where both fit it, the two-byte
    form otherwise."""

    mid_id: int | None
    mid: bytes
    abs_send_time_id: int | None

    @classmethod
    def negotiated(cls, parameters: Any) -> HeaderExtensions:
        """From aiortc's ``RTCRtpSendParameters``."""
        ids = {extension.uri: extension.id for extension in parameters.headerExtensions}
        mid = (parameters.muxId or "").encode()
        return cls(ids.get(MID_URI) if mid else None, mid, ids.get(ABS_SEND_TIME_URI))

    def block(self, ntp: int) -> bytes:
        """The block, its profile and length included; empty when neither
        extension was negotiated."""
        elements: list[tuple[int, bytes]] = []
        if self.mid_id is not None:
            elements.append((self.mid_id, self.mid))
        if self.abs_send_time_id is not None:
            elements.append((self.abs_send_time_id, ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")))
        if not elements:
            return b""
        if all(0 < id_ <= 14 and 0 < len(value) <= 16 for id_, value in elements):
            profile = 0xBEDE
            body = b"".join(bytes([id_ << 4 | len(value) - 1]) + value for id_, value in elements)
        else:
            profile = 0x1000
            body = b"".join(bytes([id_, len(value)]) + value for id_, value in elements)
        body += bytes(-len(body) % 4)
        return struct.pack("!HH", profile, len(body) // 4) + body


@attrs.frozen
class SentPacket:
    """What a retransmission of one packet needs."""

    sequence: int
    marker: int
    """0x80 when the packet ends its frame, else 0."""
    timestamp: int
    extensions: bytes
    payload: bytes


class LeanLoop:
    """One sender's RTP loop, from aiortc's start of the sender to its stop."""

    def __init__(self, sender: RTCRtpSender, parameters: Any) -> None:
        self._sender = sender
        codec = parameters.codecs[0]
        self._codec = codec
        self._payload_type: int = codec.payloadType
        self._rtx_payload_type: int | None = next(
            (
                other.payloadType
                for other in parameters.codecs
                if other.mimeType.lower().endswith("/rtx")
                and str(other.parameters.get("apt")) == str(codec.payloadType)
            ),
            None,
        )
        self._extensions = HeaderExtensions.negotiated(parameters)
        self._history: dict[int, SentPacket] = {}
        self._sequence = _random_sequence()
        self._rtx_sequence = _random_sequence()
        self._timestamp_origin = secrets.randbits(32)
        self._octets = 0
        self._packets = 0
        self._sends_directly = False

    @property
    def packets_sent(self) -> int:
        return self._packets

    @property
    def sends_directly(self) -> bool:
        """The track's encoding hands this loop its frames (:meth:`send_now`)."""
        return self._sends_directly

    async def run(self, _codec: Any = None) -> None:
        """Takes the place of the sender's ``_run_rtp``."""
        sender = self._sender
        getattr(sender, _SENDER_STATE + "rtp_started").set()
        packer = get_encoder(self._codec)
        offered_to: MediaStreamTrack | None = None
        try:
            while True:
                # aiortc types it as always set; replaceTrack(None) clears it.
                track: MediaStreamTrack | None = sender.track
                if track is None:
                    await asyncio.sleep(NO_TRACK_WAIT)
                    continue
                if track is not offered_to:
                    offered_to = track
                    frames_end = self._send_directly(track)
                    if frames_end is not None:
                        await frames_end
                        return
                packet = await track.recv()
                if not isinstance(packet, av.Packet):
                    raise TypeError(f"a lean RTP loop got {type(packet).__name__}, not a packet")
                if not sender._enabled:
                    continue
                shared = getattr(track, "payloads_of", None)
                made = shared(packet) if shared is not None else None
                payloads, timestamp = made if made is not None else packer.pack(packet)
                if payloads:
                    await self._send_frame(
                        payloads, (self._timestamp_origin + timestamp) & 0xFFFFFFFF
                    )
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            logger.exception("a viewer's RTP loop stopped")
        finally:
            ended: MediaStreamTrack | None = sender.track
            if ended is not None:
                ended.stop()
            getattr(sender, _SENDER_STATE + "rtp_exited").set()

    def _send_directly(self, track: MediaStreamTrack) -> Awaitable[None] | None:
        """Have ``track``'s shared encoding call :meth:`send_now` with each of
        its frames as it hands them out; what completes when the track's
        frames end, or None (the track cannot, or aiortc's path is not found)."""
        offer = getattr(track, "send_directly", None)
        if offer is None or wire_of(self._sender) is None:
            return None
        frames_end: Awaitable[None] | None = offer(self.send_now)
        self._sends_directly = frames_end is not None
        return frames_end

    def send_now(self, payloads: list[bytes], timestamp: int) -> bool:
        """Send one frame's ``payloads`` (``timestamp`` on the codec's clock,
        from the stream's start) at once, from the caller, on the loop; False
        when it was not sent: the sender is paused, its connection is closing,
        or its way out is backed up (:data:`.rtp_direct.BACKLOG_LIMIT`). The
        frames after one not sent cannot be decoded: the caller goes on at
        the next keyframe."""
        wire = wire_of(self._sender) if self._sender._enabled else None
        if wire is None or wire.backed_up:
            return False
        if payloads:
            timestamp = (self._timestamp_origin + timestamp) & 0xFFFFFFFF
            wire.send(list(self._frame(payloads, timestamp)))
        return True

    async def _send_frame(self, payloads: list[bytes], timestamp: int) -> None:
        send = self._sender.transport._send_rtp
        for packet in self._frame(payloads, timestamp):
            await send(packet)

    def _frame(self, payloads: list[bytes], timestamp: int) -> Iterator[bytes]:
        """The frame's RTP packets, in order, each kept for retransmission
        and counted for the sender report once the caller takes the next."""
        sender = self._sender
        ntp = ntp_time()
        extensions = self._extensions.block(ntp)
        first_byte = 0x90 if extensions else 0x80
        last = len(payloads) - 1
        for index, payload in enumerate(payloads):
            sequence = self._sequence
            marker = 0x80 if index == last else 0
            self._history[sequence % HISTORY_SIZE] = SentPacket(
                sequence, marker, timestamp, extensions, payload
            )
            header = _HEADER.pack(
                first_byte, marker | self._payload_type, sequence, timestamp, sender._ssrc
            )
            yield header + extensions + payload
            self._sequence = (sequence + 1) & 0xFFFF
            self._octets += len(payload)
            self._packets += 1
        # What aiortc's RTCP loop puts in the next sender report: the wall
        # clock at sending beside the frame's RTP timestamp, as its own loop.
        values = (ntp, timestamp, self._octets, self._packets)
        for name, value in zip(_REPORT_COUNTERS, values, strict=True):
            setattr(sender, _SENDER_STATE + name, value)

    async def retransmit(self, sequence: int) -> None:
        """Takes the place of the sender's ``_retransmit`` (a NACK named ``sequence``)."""
        sent = self._history.get(sequence % HISTORY_SIZE)
        if sent is None or sent.sequence != sequence:
            return
        sender = self._sender
        if self._rtx_payload_type is None:
            payload_type, ssrc, payload = self._payload_type, sender._ssrc, sent.payload
        else:
            payload_type, ssrc = self._rtx_payload_type, sender._rtx_ssrc
            payload = sequence.to_bytes(2, "big") + sent.payload
            sequence, self._rtx_sequence = self._rtx_sequence, (self._rtx_sequence + 1) & 0xFFFF
        first_byte = 0x90 if sent.extensions else 0x80
        header = _HEADER.pack(
            first_byte, sent.marker | payload_type, sequence, sent.timestamp, ssrc
        )
        await sender.transport._send_rtp(header + sent.extensions + payload)


def send_with_lean_loop(sender: RTCRtpSender) -> bool:
    """Have ``sender`` run :class:`LeanLoop` once aiortc starts it; its track
    must give encoded packets. False, and nothing changed, when this aiortc's
    sender lacks what the loop needs."""
    private = (_SENDER_STATE + name for name in (*_EVENTS, *_REPORT_COUNTERS))
    if not all(hasattr(sender, name) for name in (*_SENDER_ATTRIBUTES, *private)):
        return False
    own_send: Callable[[Any], Awaitable[None]] = sender.send

    async def send(parameters: Any) -> None:
        # aiortc starts the RTP loop in its first send(); later calls change nothing.
        if not isinstance(getattr(sender, "_run_rtp", None), _LeanRun):
            loop = LeanLoop(sender, parameters)
            setattr(sender, "_run_rtp", _LeanRun(loop))  # noqa: B010
            setattr(sender, "_retransmit", loop.retransmit)  # noqa: B010
        await own_send(parameters)

    setattr(sender, "send", send)  # noqa: B010
    return True


def lean_loop_of(sender: RTCRtpSender) -> LeanLoop | None:
    """The sender's lean loop, once aiortc started it (tests, metrics)."""
    run = getattr(sender, "_run_rtp", None)
    return run.loop if isinstance(run, _LeanRun) else None


@attrs.frozen
class _LeanRun:
    """The ``_run_rtp`` aiortc calls: the lean loop's, findable again."""

    loop: LeanLoop

    def __call__(self, codec: Any) -> Awaitable[None]:
        return self.loop.run(codec)
