"""Two layers, encoded once each: viewers on different layers of one camera,
switching at keyframes, with real aiortc viewers on loopback (and the queue's
switching rules with real packets)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator

import av
import pytest
import pytest_asyncio
from av.stream import Stream

from intercom_fsm.adapters.camera import CameraSettings
from intercom_fsm.adapters.camera.encoding import PacketQueue, SharedVp8Encoder
from intercom_fsm.adapters.camera.hub import ViewerTrack
from intercom_fsm.adapters.camera.layers import Layer, LayerChooser, LayerPolicy, LayerRates
from tests.camera.conftest import eventually
from tests.peer.test_shared_encoding import FPS, Device, KeyframeRequests, Viewer

pytestmark = pytest.mark.asyncio


def packet(keyframe: bool, tag: int) -> av.Packet[Stream]:
    made = av.Packet(bytes([tag]) * 10)
    made.is_keyframe = keyframe
    return made


async def drain(queue: PacketQueue) -> list[int]:
    tags = []
    while queue._packets:
        got = await queue.get()
        assert got is not None
        tags.append(bytes(got)[0])
    return tags


async def test_a_viewer_moves_to_its_new_layer_at_that_layers_keyframe() -> None:
    chooser = LayerChooser(LayerRates(460_000, 161_000), 0.0)
    chooser.target = Layer.HIGH
    queue = PacketQueue(KeyframeRequests(), chooser)
    high, low = Layer.HIGH, Layer.LOW
    queue.offer({high: [packet(True, 1)], low: [packet(True, 2)]})
    queue.offer({high: [packet(False, 3)], low: [packet(False, 4)]})
    assert await drain(queue) == [1, 3]  # the high layer, from its keyframe

    chooser.target = low
    queue.offer({high: [packet(False, 5)], low: [packet(False, 6)]})
    assert queue.layer is high  # a low delta would not decode: keep the high layer
    queue.offer({high: [packet(False, 7)], low: [packet(True, 8)]})
    queue.offer({high: [packet(True, 9)], low: [packet(False, 10)]})
    assert await drain(queue) == [5, 8, 10]
    assert queue.layer is low and queue.switches == 1


async def test_a_joining_viewer_starts_on_its_layer_at_a_keyframe() -> None:
    chooser = LayerChooser(LayerRates(460_000, 161_000), 0.0)
    assert chooser.target is Layer.LOW  # where every viewer starts
    queue = PacketQueue(KeyframeRequests(), chooser)
    queue.offer({Layer.HIGH: [packet(True, 1)], Layer.LOW: [packet(False, 2)]})
    queue.offer({Layer.HIGH: [packet(False, 3)], Layer.LOW: [packet(True, 4)]})
    assert await drain(queue) == [4]


@pytest_asyncio.fixture
async def device() -> AsyncIterator[Device]:
    made = Device(CameraSettings(width=640, height=480, fps=FPS, bitrate=600_000))
    await made.camera.open()
    yield made
    await made.close()


def track_of(device: Device, peer: int) -> ViewerTrack:
    track = device.peers._peers[peer].track
    assert isinstance(track, ViewerTrack)
    return track


def longest_gap(viewer: Viewer, since: float) -> float:
    times = [since] + [t for t in viewer.arrivals if t >= since]
    return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else 0.0


@pytest.mark.timeout(90)
async def test_viewers_on_two_layers_cost_two_encodes_and_switch_without_a_gap(
    device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="intercom_fsm.adapters.camera.encoding")
    fast, slow = Viewer(), Viewer()
    for viewer in (fast, slow):
        await device.connect(viewer)
    await eventually(lambda: len(fast.frames) >= 10 and len(slow.frames) >= 10, 20, "frames")
    encoder = device.camera._shared_vp8
    assert isinstance(encoder, SharedVp8Encoder)
    # New viewers start low: one layer encoded.
    assert encoder.viewers_on(Layer.LOW) == 2 and not encoder.encoding(Layer.HIGH)

    # The real receivers' RTCP reaches each viewer's chooser: estimates and reports.
    chooser = track_of(device, 2)._packets.chooser  # type: ignore[union-attr]
    assert isinstance(chooser, LayerChooser)
    await eventually(lambda: chooser.estimate is not None, 10, "a REMB from the viewer")
    await eventually(lambda: chooser.loss(time.monotonic()) is not None, 10, "receiver reports")
    assert chooser.loss(time.monotonic()) == 0.0  # loopback loses nothing

    # Loopback is clean: both probe up, and the low layer stops.
    await eventually(lambda: encoder.viewers_on(Layer.HIGH) == 2, 30, "both viewers on high")
    await eventually(lambda: not encoder.encoding(Layer.LOW), 5, "the low layer stopped")

    # The second viewer's receiver says its path carries 100 kbit/s.
    switched = time.monotonic()
    switches = encoder.layer_switches
    for _ in range(20):
        track_of(device, 2).on_remb(100_000)
        await asyncio.sleep(0.05)
        if encoder.viewers_on(Layer.LOW):
            break
    await eventually(lambda: encoder.viewers_on(Layer.LOW) == 1, 5, "the slow viewer on low")
    assert encoder.layer_switches == switches + 1

    # A third viewer (it starts low) adds no encode: two per picture, not three.
    third = Viewer()
    await device.connect(third)
    await eventually(lambda: len(third.frames) >= 10, 20, "the third viewer's frames")
    # This one process runs the daemon's side and the three viewers: a stall
    # of it while the third one connects can read as a path's queue to the
    # fast viewer's chooser, which then probes up again after its back-off.
    try:
        await eventually(
            lambda: (encoder.viewers_on(Layer.HIGH), encoder.viewers_on(Layer.LOW)) == (1, 2),
            LayerPolicy().first_backoff + 12,
            "one viewer on the high layer, two on the low one",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; the layer switches:\n{caplog.text}") from None
    pictures, high, low = (
        encoder.pictures_encoded,
        encoder.encodes(Layer.HIGH),
        encoder.encodes(Layer.LOW),
    )
    await asyncio.sleep(2)
    pictures = encoder.pictures_encoded - pictures
    assert pictures >= FPS
    assert encoder.encodes(Layer.HIGH) - high == pictures
    assert encoder.encodes(Layer.LOW) - low == pictures

    # The slow viewer kept decoding through its switches, in order.
    assert longest_gap(slow, switched) < 0.5
    pts = [f.pts or 0 for f in slow.frames]
    assert pts == sorted(pts)

    # The low layer's viewers leave: it is no longer encoded.
    await device.peers.close(2)
    await device.peers.close(3)
    await eventually(lambda: not encoder.encoding(Layer.LOW), 5, "the low layer stopped")
    frames = len(fast.frames)
    await eventually(lambda: len(fast.frames) >= frames + 5, 5, "the fast viewer's frames")
