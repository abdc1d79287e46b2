"""What a viewer's receiver says about the path, read from aiortc's RTCP.

aiortc's :class:`~aiortc.RTCRtpSender` gets every RTCP packet meant for it in
``_handle_rtcp_packet``: receiver reports (RR, and the report blocks of SR) and
the receiver's bandwidth estimate (REMB, a payload-specific feedback of type
``APP``). It applies a REMB to its own encoder only, which a shared encoder is
not, and keeps the losses in its stats. :func:`observe_receiver_feedback`
puts a reader in front of that method, for one sender: it hands the sender's
own report blocks and estimates to a :class:`FeedbackListener`, then lets
aiortc handle the packet as before (NACKs, PLIs, RTT are untouched). That one
attribute is all it replaces, as the peer adapter already does for keyframe
requests.

It also keeps a slow link from drowning in retransmissions: aiortc resends a
packet every time a NACK names it, and a receiver that repeats its NACKs
faster than the round trip (the queue of a congested link makes that long)
gets each lost packet many times over, which congests the link further. A
packet is resent at most once per round trip (:class:`Retransmissions`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from aiortc import RTCRtpSender, clock
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

logger = logging.getLogger(__name__)


@runtime_checkable
class FeedbackListener(Protocol):
    def on_remb(self, bitrate: int) -> None:
        """The receiver's estimate of what the path carries, in bit/s."""

    def on_receiver_report(
        self, highest_sequence: int, packets_lost: int, round_trip: float | None
    ) -> None:
        """A report block about this sender's stream: the extended highest
        sequence number received, the cumulative number of packets lost, and
        the round-trip time in seconds it gives (None before the receiver had
        a sender report to answer)."""


MIN_RESEND_INTERVAL = 0.1
FORGET_AFTER = 3.0


class Retransmissions:
    """When each packet was last resent, to resend it once per round trip."""

    def __init__(self) -> None:
        self.round_trip = 0.0
        self._resent: dict[int, float] = {}

    def due(self, sequences: list[int], now: float) -> list[int]:
        """The ones of ``sequences`` not resent within the last round trip
        (they are counted as resent now)."""
        wait = max(MIN_RESEND_INTERVAL, self.round_trip)
        due = [s for s in sequences if now - self._resent.get(s, -float("inf")) >= wait]
        for sequence in due:
            self._resent[sequence] = now
        if len(self._resent) > 512:
            self._resent = {s: t for s, t in self._resent.items() if now - t < FORGET_AFTER}
        return due


def observe_receiver_feedback(sender: RTCRtpSender, listener: FeedbackListener) -> bool:
    """Tell ``listener`` about every REMB and report block for ``sender``,
    and resend a NACKed packet at most once per round trip; False (and
    nothing changed) when this aiortc has no such handler."""
    own: Callable[[Any], Awaitable[None]] | None = getattr(sender, "_handle_rtcp_packet", None)
    ssrc = getattr(sender, "_ssrc", None)
    if own is None or not callable(own) or not isinstance(ssrc, int):
        return False
    handle = own
    resends = Retransmissions()

    async def read_then_handle(packet: Any) -> None:
        try:
            if not _read(packet, ssrc, listener, resends):
                return
        except Exception:  # a listener's bug must not cost the viewer its NACKs
            logger.exception("reading a viewer's RTCP feedback failed")
        await handle(packet)

    setattr(sender, "_handle_rtcp_packet", read_then_handle)  # noqa: B010
    return True


def _read(packet: Any, ssrc: int, listener: FeedbackListener, resends: Retransmissions) -> bool:
    """Pass what ``packet`` says on; False when aiortc need not see it."""
    if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
        for report in packet.reports:
            if report.ssrc == ssrc:
                round_trip = _round_trip(report)
                if round_trip is not None:
                    resends.round_trip = round_trip
                listener.on_receiver_report(
                    report.highest_sequence, report.packets_lost, round_trip
                )
    elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
        packet.lost = resends.due(list(packet.lost), time.monotonic())
        return bool(packet.lost)
    elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
        try:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:
            return True  # an APP feedback that is not a REMB
        if ssrc in ssrcs:
            listener.on_remb(bitrate)
    return True


def _round_trip(report: Any) -> float | None:
    """RFC 3550 section 6.4.1: arrival time minus the last SR's time (LSR)
    minus the receiver's delay since it (DLSR), in 1/65536 s on the middle 32
    bits of the NTP clock, which aiortc's sender stamps its SRs with."""
    if not report.lsr:
        return None
    arrived = (clock.current_ntp_time() >> 16) & 0xFFFFFFFF
    units = (arrived - report.lsr - report.dlsr) & 0xFFFFFFFF
    if units >= 0x80000000:  # a little negative: clocks in step, rounding
        return 0.0
    return float(units / 65536)
