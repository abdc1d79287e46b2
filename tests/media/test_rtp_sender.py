"""The lean RTP loop of viewers fed by a shared encoding
(:mod:`intercom_fsm.adapters.rtp_sender`), against real aiortc viewers: what
they receive is what aiortc's own loop would send (header extensions, markers,
sequence numbers, sender reports), a lost packet comes back as RTX, and the
pictures decode."""

from __future__ import annotations

import asyncio
import fractions
import itertools
from collections.abc import Callable
from typing import Any

import av
import pytest
from aiortc import RTCRtpSender
from aiortc.rtp import RtpPacket

from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.rtp_payloads import KEPT, SharedPayloads
from intercom_fsm.adapters.rtp_sender import (
    HeaderExtensions,
    lean_loop_of,
    ntp_time,
    send_with_lean_loop,
)
from tests.camera.conftest import eventually

from .conftest import Device, Viewer

pytestmark = pytest.mark.e2e

TEST_PATTERN = CameraSettings(source="testsrc", width=320, height=240, fps=15)


class Arrivals:
    """Every RTP packet a viewer's receiver is handed, before it handles it;
    ``drop`` names sequence numbers (of the media SSRC) it never sees."""

    def __init__(self, viewer: Viewer) -> None:
        self.packets: list[RtpPacket] = []
        self.drop: set[int] = set()
        self.dropped: list[int] = []
        receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")
        handle = receiver._handle_rtp_packet

        async def arriving(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.sequence_number in self.drop and packet.payload_type == self.media_type:
                self.drop.discard(packet.sequence_number)
                self.dropped.append(packet.sequence_number)
                return
            self.packets.append(packet)
            await handle(packet, arrival_time_ms)

        # Wrapping aiortc's handler on this one receiver instance, on purpose.
        receiver._handle_rtp_packet = arriving  # type: ignore[method-assign]
        self.media_type: int | None = None


def abs_send_time(packet: RtpPacket) -> int:
    """The packet's abs-send-time, which every packet of the lean loop carries."""
    sent_at = packet.extensions.abs_send_time
    assert sent_at is not None, packet
    return sent_at


def video_sender(device: Device, peer: int) -> RTCRtpSender:
    connection = device.peers._peers[peer].connection
    return next(s for s in connection.getSenders() if s.kind == "video")


def payload_type(sdp: str, name: str, apt: int | None = None) -> int:
    for line in sdp.splitlines():
        if line.startswith("a=rtpmap:") and f" {name}/" in line:
            number = int(line.split(":", 1)[1].split()[0])
            if apt is None or f"a=fmtp:{number} apt={apt}" in sdp:
                return number
    raise AssertionError(f"no {name} in the answer")


async def connect_watched(device: Device, viewer: Viewer) -> tuple[int, Arrivals]:
    """Connect ``viewer``, watching its receiver from before the first packet."""
    connecting = asyncio.create_task(device.connect(viewer))
    await eventually(lambda: bool(viewer.pc.getTransceivers()), 10, "the viewer's transceiver")
    arrivals = Arrivals(viewer)
    peer = await connecting
    arrivals.media_type = payload_type(viewer.answer_sdp, "VP8")
    return peer, arrivals


async def vp8_viewer(make_device: Callable[..., Device]) -> tuple[Device, Viewer, int, Arrivals]:
    """The test pattern's camera and one VP8 viewer, watched from its first packet."""
    device = make_device(TEST_PATTERN)
    await device.camera.open()
    viewer = Viewer(("video/VP8",))
    peer, arrivals = await connect_watched(device, viewer)
    return device, viewer, peer, arrivals


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_shared_encoders_viewer_gets_what_aiortcs_own_loop_would_send(
    make_device: Callable[..., Device],
) -> None:
    device, viewer, peer, arrivals = await vp8_viewer(make_device)
    await eventually(lambda: len(viewer.frames) >= 15, 20, "the viewer's pictures")

    sender = video_sender(device, peer)
    loop = lean_loop_of(sender)
    assert loop is not None, "the shared encoder's viewer is not sent by the lean loop"
    media = media_sent_as_aiortc_sends_it(viewer, sender, loop.packets_sent, arrivals)
    timestamps = [p.timestamp for p in media]
    assert len(set(timestamps)) >= 15
    # The wall clock in abs-send-time: within a second of now (it wraps every 64 s).
    now = (ntp_time() >> 14) & 0xFFFFFF
    assert all(((now - abs_send_time(p)) & 0xFFFFFF) < (1 << 18) for p in media[-5:])


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_lost_packet_comes_back_as_rtx_and_reports_count_what_was_sent(
    make_device: Callable[..., Device],
) -> None:
    device, viewer, peer, arrivals = await vp8_viewer(make_device)
    vp8 = payload_type(viewer.answer_sdp, "VP8")
    rtx = payload_type(viewer.answer_sdp, "rtx", apt=vp8)
    await eventually(lambda: len(viewer.frames) >= 5, 20, "the viewer's first pictures")

    sender = video_sender(device, peer)
    await lose_one_and_see_it_resent(arrivals, sender, rtx, after=20)
    pictures = len(viewer.frames)
    await eventually(lambda: len(viewer.frames) >= pictures + 15, 10, "pictures after the loss")

    # The viewer's receiver reads our counters in the sender reports aiortc sends.
    loop = lean_loop_of(sender)
    assert loop is not None
    reported = await packets_reported_sent(viewer)
    media_arrived = sum(1 for p in arrivals.packets if p.payload_type == vp8)
    assert 0 < reported <= loop.packets_sent
    assert reported >= media_arrived // 2


def media_sent_as_aiortc_sends_it(
    viewer: Viewer, sender: RTCRtpSender, packets_sent: int, arrivals: Arrivals
) -> list[RtpPacket]:
    """The media packets ``viewer`` got from ``sender``, checked to carry what
    aiortc's own loop puts in them: its SSRC, the ``mid`` and abs-send-time
    extensions, consecutive sequence numbers, the marker on the last packet of
    each picture only; no more of them than the loop counts sent."""
    media = [p for p in arrivals.packets if p.payload_type == arrivals.media_type]
    assert media and packets_sent >= len(media)
    assert {p.ssrc for p in media} == {sender._ssrc}
    mid = next(line for line in viewer.answer_sdp.splitlines() if line.startswith("a=mid:"))
    assert {p.extensions.mid for p in media} == {mid.removeprefix("a=mid:")}
    assert all(p.extensions.abs_send_time is not None for p in media)
    for before, after in itertools.pairwise(media):
        assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
        assert bool(before.marker) == (after.timestamp != before.timestamp)
    return media


async def lose_one_and_see_it_resent(
    arrivals: Arrivals, sender: RTCRtpSender, rtx: int, after: int
) -> None:
    """Lose the media packet ``after`` packets past the last one arrived, and
    see it come back on ``rtx`` from the sender's RTX stream."""
    media = arrivals.media_type
    last = max(p.sequence_number for p in arrivals.packets if p.payload_type == media)
    lost = (last + after) & 0xFFFF
    arrivals.drop.add(lost)
    await eventually(lambda: bool(arrivals.dropped), 10, "the packet to lose")
    await eventually(
        lambda: any(p.payload_type == rtx for p in arrivals.packets), 5, "its retransmission"
    )
    resent = next(p for p in arrivals.packets if p.payload_type == rtx)
    assert resent.ssrc == sender._rtx_ssrc
    assert int.from_bytes(resent.payload[:2], "big") == lost


async def packets_reported_sent(viewer: Viewer) -> int:
    """The packet count of the first sender report the viewer's receiver read."""
    receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")
    for _ in range(40):
        stats = await receiver.getStats()
        report = next((s for s in stats.values() if s.type == "remote-outbound-rtp"), None)
        if report is not None and report.packetsSent > 0:
            return int(report.packetsSent)
        await asyncio.sleep(0.1)
    raise AssertionError("no sender report reached the viewer")


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_viewers_of_one_encoding_get_the_same_payloads_cut_once(
    make_device: Callable[..., Device],
) -> None:
    device, _first, _peer, first_arrivals = await vp8_viewer(make_device)
    second = Viewer(("video/VP8",))
    _, second_arrivals = await connect_watched(device, second)
    await eventually(lambda: len(second.frames) >= 15, 20, "the second viewer's pictures")

    def payloads(arrivals: Arrivals) -> set[bytes]:
        return {p.payload for p in arrivals.packets if p.payload_type == arrivals.media_type}

    # VP8's payload descriptor carries a picture ID that each packetizer
    # starts at random: identical payloads were cut once, for both.
    shared = payloads(first_arrivals) & payloads(second_arrivals)
    assert len(shared) >= 0.9 * len(payloads(second_arrivals))


def vp8_picture_id(payload: bytes) -> int:
    if payload[2] & 0x80:
        return int.from_bytes(payload[2:4], "big") & 0x7FFF
    return payload[2]


def test_shared_payloads_are_found_by_the_packet_itself() -> None:
    made = SharedPayloads("video/VP8")
    packets = []
    for index in range(KEPT + 1):
        packet = av.Packet(bytes([0x10, 0x02, 0x00]) + bytes(100 + index))
        packet.pts = index * 6000
        packet.time_base = fractions.Fraction(1, 90_000)
        made.add(packet)
        packets.append(packet)
    first_payloads = made.get(packets[1])
    last = made.get(packets[-1])
    assert first_payloads is not None and last is not None
    assert last[1] == KEPT * 6000
    # Picture IDs (RFC 7741 4.2: 7 or 15 bits after the first two bytes) count the packets.
    assert vp8_picture_id(last[0][0]) == (vp8_picture_id(first_payloads[0][0]) + KEPT - 1) % 0x8000
    assert made.get(packets[0]) is None  # the oldest one is gone
    assert made.get(av.Packet(b"unknown")) is None


def test_the_extension_block_takes_the_one_byte_form_where_it_fits() -> None:
    ntp = 0x12345678_9ABCDEF0
    abs_send_time = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
    block = HeaderExtensions(mid_id=4, mid=b"0", abs_send_time_id=2).block(ntp)
    body = bytes([0x40]) + b"0" + bytes([0x22]) + abs_send_time
    assert block == b"\xbe\xde\x00\x02" + body + b"\x00\x00"
    assert len(block) % 4 == 0


def test_the_extension_block_takes_the_two_byte_form_for_a_high_id() -> None:
    block = HeaderExtensions(mid_id=15, mid=b"video", abs_send_time_id=None).block(0)
    assert block == b"\x10\x00\x00\x02" + bytes([15, 5]) + b"video" + b"\x00"


def test_no_extension_negotiated_means_no_block() -> None:
    assert HeaderExtensions(mid_id=None, mid=b"", abs_send_time_id=None).block(ntp_time()) == b""


def test_a_sender_without_the_state_the_loop_needs_keeps_aiortcs_loop() -> None:
    class OtherSender:
        _ssrc = 1

        async def send(self, parameters: Any) -> None: ...

    sender: Any = OtherSender()
    own_send = sender.send
    assert send_with_lean_loop(sender) is False
    assert sender.send == own_send
