"""The camera's own H.264 sent straight to each viewer's sender as the RTSP
reader hands an access unit out (:mod:`intercom_fsm.adapters.rtp_direct`,
``send_directly`` of the passthrough and the lean RTP loop): against
GStreamer's RTSP server and real aiortc viewers, what they receive is what
the queued path sends, a lost packet still comes back, the DTLS transport's
statistics and the sender reports count it, and a viewer that leaves stops
being sent to while the others go on. The hand-over itself is tested on its
own: in order, from an IDR, a failing viewer dropped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCRtpSender,
)

from bench.h264_offer import HIGH_3_1
from bench.rtsp_source import RtspSourceProcess
from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.h264 import AccessUnit
from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.camera.passthrough import H264Passthrough
from intercom_fsm.adapters.h264_payloads import payloads
from intercom_fsm.adapters.rtp_direct import wire_of
from intercom_fsm.adapters.rtp_sender import LeanLoop, lean_loop_of
from tests.camera.conftest import eventually

from .conftest import Device, Viewer
from .test_rtp_sender import (
    Arrivals,
    lose_one_and_see_it_resent,
    media_sent_as_aiortc_sends_it,
    packets_reported_sent,
    payload_type,
    video_sender,
)

IDR = bytes([0x65, 0x88, 0x84])
SLICE = bytes([0x41, 0x9A, 0x02])
SPS = bytes([0x67, 0x64, 0x00, 0x1E, 0xAC])
PPS = bytes([0x68, 0xEB, 0xE3])


async def h264_viewer(device: Device) -> tuple[Viewer, int, Arrivals]:
    """One more viewer of the camera's own H.264, watched from its first packet."""
    viewer = Viewer(("video/H264",), h264_profile=HIGH_3_1)
    connecting = asyncio.create_task(device.connect(viewer))
    await eventually(lambda: bool(viewer.pc.getTransceivers()), 10, "the viewer's transceiver")
    arrivals = Arrivals(viewer)
    peer = await connecting
    arrivals.media_type = payload_type(viewer.answer_sdp, "H264")
    return viewer, peer, arrivals


def direct_loop(sender: RTCRtpSender) -> LeanLoop:
    loop = lean_loop_of(sender)
    assert loop is not None and loop.sends_directly, "the camera's viewer is not sent directly"
    return loop


async def rtsp_device(make_device: Callable[..., Device], camera: RtspSourceProcess) -> Device:
    device = make_device(CameraSettings(source=camera.url, width=320, height=240, fps=15))
    await device.camera.open()
    return device


@pytest.mark.e2e
@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_each_viewer_is_sent_the_cameras_frames_as_they_come(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    device = await rtsp_device(make_device, rtsp_camera)
    first, first_peer, first_arrivals = await h264_viewer(device)
    second, second_peer, second_arrivals = await h264_viewer(device)
    await eventually(
        lambda: len(first.frames) >= 20 and len(second.frames) >= 20, 20, "both viewers' pictures"
    )

    for viewer, peer, arrivals in (
        (first, first_peer, first_arrivals),
        (second, second_peer, second_arrivals),
    ):
        sender = video_sender(device, peer)
        loop = direct_loop(sender)
        media = media_sent_as_aiortc_sends_it(viewer, sender, loop.packets_sent, arrivals)
        # aiortc's transport statistics count what went around it.
        stats = await viewer_side_stats(device, peer)
        assert stats["packetsSent"] >= loop.packets_sent
        assert stats["bytesSent"] > sum(len(p.payload) for p in media)

    # Cut once: the same payloads for both, packet for packet.
    def media_payloads(arrivals: Arrivals) -> set[bytes]:
        return {p.payload for p in arrivals.packets if p.payload_type == arrivals.media_type}

    shared = media_payloads(first_arrivals) & media_payloads(second_arrivals)
    assert len(shared) >= 0.9 * len(media_payloads(second_arrivals))


async def viewer_side_stats(device: Device, peer: int) -> dict[str, Any]:
    """The device's DTLS transport statistics towards ``peer``."""
    connection = device.peers._peers[peer].connection
    report = await connection.getStats()
    transport = next(s for s in report.values() if s.type == "transport")
    return {"packetsSent": transport.packetsSent, "bytesSent": transport.bytesSent}


@pytest.mark.e2e
@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_packet_lost_on_the_way_comes_back_and_reports_count_what_was_sent(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    device = await rtsp_device(make_device, rtsp_camera)
    viewer, peer, arrivals = await h264_viewer(device)
    await eventually(lambda: len(viewer.frames) >= 5, 20, "the viewer's first pictures")
    h264 = arrivals.media_type
    assert h264 is not None
    rtx = payload_type(viewer.answer_sdp, "rtx", apt=h264)

    sender = video_sender(device, peer)
    await lose_one_and_see_it_resent(arrivals, sender, rtx, after=10)
    loop = direct_loop(sender)
    assert 0 < await packets_reported_sent(viewer) <= loop.packets_sent


@pytest.mark.e2e
@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_viewer_that_leaves_is_no_longer_sent_to_and_the_others_go_on(
    rtsp_camera: RtspSourceProcess, make_device: Callable[..., Device]
) -> None:
    device = await rtsp_device(make_device, rtsp_camera)
    leaving, leaving_peer, _ = await h264_viewer(device)
    staying, staying_peer, _ = await h264_viewer(device)
    await eventually(
        lambda: len(leaving.frames) >= 5 and len(staying.frames) >= 5, 20, "both viewers' pictures"
    )
    leaving_loop = direct_loop(video_sender(device, leaving_peer))
    staying_loop = direct_loop(video_sender(device, staying_peer))

    await device.peers.close(leaving_peer)
    await eventually(lambda: device.camera.stats.passthrough_viewers == 1, 5, "the viewer gone")
    sent_when_gone = leaving_loop.packets_sent
    before = len(staying.frames)
    await eventually(lambda: len(staying.frames) >= before + 15, 10, "the other viewer's pictures")
    assert leaving_loop.packets_sent == sent_when_gone
    assert staying_loop.packets_sent > 0


# --- the hand-over, on its own ---------------------------------------------------------


class Taken:
    """A viewer's sender: every frame it sends; none while ``backed_up``."""

    def __init__(self) -> None:
        self.frames: list[tuple[list[bytes], int]] = []
        self.backed_up = False

    def __call__(self, frame_payloads: list[bytes], timestamp: int) -> bool:
        if self.backed_up:
            return False
        self.frames.append((frame_payloads, timestamp))
        return True


def idr() -> AccessUnit:
    units = (SPS, PPS, IDR)
    return AccessUnit(b"".join(b"\0\0\0\1" + unit for unit in units), True, units)


def delta() -> AccessUnit:
    return AccessUnit(b"\0\0\0\1" + SLICE, False, (SLICE,))


@pytest.mark.asyncio
async def test_what_was_queued_goes_first_then_each_access_unit_as_it_comes() -> None:
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    now = time.monotonic()
    queue = passthrough.subscribe()
    passthrough.deliver(delta(), now)  # before any IDR: not for this viewer
    passthrough.deliver(idr(), now + 0.1)
    passthrough.deliver(delta(), now + 0.2)
    taken = Taken()
    frames_end = passthrough.send_directly(queue, taken)
    assert frames_end is not None and len(queue) == 0
    passthrough.deliver(delta(), now + 0.3)

    assert [frame for frame, _ in taken.frames] == [
        payloads([SPS, PPS, IDR]),
        payloads([SLICE]),
        payloads([SLICE]),
    ]
    timestamps = [timestamp for _, timestamp in taken.frames]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == 3
    assert timestamps[2] - timestamps[1] == round(0.1 * 90_000)
    # Nothing is queued for a viewer sent directly, and a second offer is refused.
    assert len(queue) == 0
    assert passthrough.send_directly(queue, Taken()) is None

    passthrough.unsubscribe(queue)
    assert frames_end.done()
    passthrough.deliver(idr(), now + 0.4)
    assert len(taken.frames) == 3


@pytest.mark.asyncio
async def test_a_queued_viewer_beside_a_direct_one_gets_the_same_payloads_cut_once() -> None:
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    taken = Taken()
    passthrough.send_directly(passthrough.subscribe(), taken)
    queued = passthrough.subscribe()
    passthrough.deliver(idr(), 1.0)
    (packet,) = queued.take_all()
    made = passthrough.payloads_of(packet)
    assert made is not None and made == taken.frames[0]
    assert made[0] is taken.frames[0][0]  # the same list: cut once for both


@pytest.mark.asyncio
async def test_a_direct_viewer_starts_again_at_an_idr_when_the_camera_does() -> None:
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    taken = Taken()
    assert passthrough.send_directly(passthrough.subscribe(), taken) is not None
    passthrough.deliver(delta(), 1.0)
    passthrough.deliver(idr(), 1.1)
    passthrough.deliver(delta(), 1.2)
    passthrough.restart()
    passthrough.deliver(delta(), 1.3)
    passthrough.deliver(idr(), 1.4)
    assert [len(frame) for frame, _ in taken.frames] == [1, 1, 1]
    assert [frame[0][0] & 0x1F for frame, _ in taken.frames] == [24, 1, 24]  # STAP-A, slice


@pytest.mark.asyncio
async def test_a_viewer_whose_sending_fails_is_dropped_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes: list[int] = []
    passthrough = H264Passthrough(FrameHub(15), lambda: changes.append(passthrough.viewers))

    def failing(_payloads: list[bytes], _timestamp: int) -> bool:
        raise OSError("the socket went away")

    failing_end = passthrough.send_directly(passthrough.subscribe(), failing)
    taken = Taken()
    assert passthrough.send_directly(passthrough.subscribe(), taken) is not None
    assert failing_end is not None
    with caplog.at_level(logging.ERROR):
        passthrough.deliver(idr(), 1.0)
        passthrough.deliver(delta(), 1.1)
    assert failing_end.done() and passthrough.viewers == 1
    assert changes[-1] == 1
    assert len(taken.frames) == 2
    assert [r.getMessage() for r in caplog.records] == ["a viewer's RTP loop stopped"]


@pytest.mark.asyncio
async def test_a_viewer_whose_way_out_is_backed_up_goes_on_at_the_next_idr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[float] = []
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    passthrough.ask_camera_with(lambda: asked.append(time.monotonic()))
    slow, other = Taken(), Taken()
    passthrough.send_directly(passthrough.subscribe(), slow)
    passthrough.send_directly(passthrough.subscribe(), other)
    asked.clear()  # what joining asked for
    passthrough.deliver(idr(), 1.0)
    passthrough.deliver(delta(), 1.1)
    slow.backed_up = True
    with caplog.at_level(logging.WARNING):
        passthrough.deliver(delta(), 1.2)
        passthrough.deliver(delta(), 1.3)
    slow.backed_up = False
    passthrough.deliver(delta(), 1.4)  # cannot be decoded without the two before
    passthrough.deliver(idr(), 1.5)
    passthrough.deliver(delta(), 1.6)

    kinds = [[frame[0][0] & 0x1F for frame, _ in viewer.frames] for viewer in (slow, other)]
    assert kinds == [[24, 1, 24, 1], [24, 1, 1, 1, 1, 24, 1]]  # STAP-A (the IDR), slice
    assert passthrough.frames_not_sent == 1  # the frames after it were not offered
    assert asked == []  # a keyframe is more bits for a path that has too many
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "backed up" in warnings[0]


@pytest.mark.asyncio
async def test_a_queue_that_is_not_the_passthroughs_is_not_taken() -> None:
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    other = H264Passthrough(FrameHub(15), lambda: None)
    assert passthrough.send_directly(other.subscribe(), Taken()) is None


@pytest.mark.asyncio
async def test_a_sender_not_yet_connected_has_no_wire() -> None:
    dtls = RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
    )
    assert dtls.state == "new"
    assert wire_of(RTCRtpSender("video", dtls)) is None
