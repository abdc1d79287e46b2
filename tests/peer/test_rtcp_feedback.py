"""Reading a viewer's RTCP in front of aiortc's sender: REMBs and report
blocks reach the listener, NACKs are thinned to one resend per round trip,
and aiortc still gets every packet it needs (real RTCP packet classes; the
sender is a stand-in holding what the reader touches)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiortc import clock
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
)

from intercom_fsm.adapters.rtcp_feedback import Retransmissions, observe_receiver_feedback

SSRC = 1234


class Sender:
    def __init__(self) -> None:
        self._ssrc = SSRC
        self.handled: list[Any] = []

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self.handled.append(packet)


class Listener:
    def __init__(self) -> None:
        self.rembs: list[int] = []
        self.reports: list[tuple[int, int, float | None]] = []

    def on_remb(self, bitrate: int) -> None:
        self.rembs.append(bitrate)

    def on_receiver_report(
        self, highest_sequence: int, packets_lost: int, round_trip: float | None
    ) -> None:
        self.reports.append((highest_sequence, packets_lost, round_trip))


def report(ssrc: int, lsr: int = 0, dlsr: int = 0) -> RtcpRrPacket:
    info = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=0,
        packets_lost=7,
        highest_sequence=900,
        jitter=0,
        lsr=lsr,
        dlsr=dlsr,
    )
    return RtcpRrPacket(ssrc=99, reports=[info])


def nack(*lost: int) -> RtcpRtpfbPacket:
    packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=99, media_ssrc=SSRC)
    packet.lost = list(lost)
    return packet


@pytest.mark.asyncio
async def test_estimates_and_reports_reach_the_listener_and_aiortc() -> None:
    sender, listener = Sender(), Listener()
    assert observe_receiver_feedback(sender, listener)  # type: ignore[arg-type]
    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=99, media_ssrc=0, fci=pack_remb_fci(350_000, [SSRC])
    )
    other = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=99, media_ssrc=0, fci=pack_remb_fci(9, [5]))
    # An SR was sent 0.25 s ago (LSR, middle 32 bits of its NTP time); the
    # receiver held it 0.05 s (DLSR): the round trip is about 0.2 s.
    now = (clock.current_ntp_time() >> 16) & 0xFFFFFFFF
    sent = (now - int(0.25 * 65536)) & 0xFFFFFFFF
    for packet in (remb, other, report(SSRC, sent, int(0.05 * 65536)), report(77)):
        await sender._handle_rtcp_packet(packet)
    assert listener.rembs == [350_000]
    ((highest, lost, round_trip),) = listener.reports
    assert (highest, lost) == (900, 7) and round_trip == pytest.approx(0.2, abs=0.02)
    assert len(sender.handled) == 4  # aiortc sees them all, as before


@pytest.mark.asyncio
async def test_a_packet_is_resent_once_per_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    # rtcp_feedback calls ``time.monotonic()`` through the module at each NACK.
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    sender, listener = Sender(), Listener()
    observe_receiver_feedback(sender, listener)  # type: ignore[arg-type]
    await sender._handle_rtcp_packet(nack(10, 11))
    now[0] += 0.05
    await sender._handle_rtcp_packet(nack(10, 11))  # asked again too soon: dropped
    await sender._handle_rtcp_packet(nack(11, 12))  # only the new one goes on
    now[0] += 0.2
    await sender._handle_rtcp_packet(nack(10))  # a round trip later: resent
    assert [p.lost for p in sender.handled] == [[10, 11], [12], [10]]


def test_the_wait_follows_the_round_trip() -> None:
    resends = Retransmissions()
    resends.round_trip = 0.6
    assert resends.due([1, 2], 0.0) == [1, 2]
    assert resends.due([1, 2], 0.5) == []
    assert resends.due([1, 2, 3], 0.7) == [1, 2, 3]
