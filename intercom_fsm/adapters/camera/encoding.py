"""VP8 encoded once per picture for every viewer that negotiated VP8, in two layers.

aiortc encodes a track once per viewer: three viewers of the same camera cost
three encodes of the same picture, which is most of the daemon's CPU. When a
viewer's connection settles on VP8, its track switches to the shared encoder
(:meth:`ViewerTrack.share_encoder`) and hands its sender already encoded
packets (:class:`av.Packet`), cut into RTP payloads once for every viewer
(:mod:`intercom_fsm.adapters.rtp_payloads`). Each picture is then encoded
once per *layer*, on its own thread (:mod:`.encoder_parts`), whatever the
number of viewers.

There are two layers (:mod:`.layers`): *high* at the ceiling (``VIDEO_BITRATE``
or :func:`default_bitrate`) and *low* at about a third of it. Each viewer is on
the one its receiver's reports allow (its REMB estimate and its losses, read
by :mod:`intercom_fsm.adapters.rtcp_feedback`), so a viewer behind a slow or
lossy link is neither frozen nor flooded while a fast one beside it keeps the
high layer. A layer is encoded only while some viewer is on it or moving to
it: one encoder per layer at most, never one per viewer.

What a shared stream needs that a per-viewer one gets for free:

* a decodable start: every viewer starts at a keyframe. A viewer joining
  asks its layer for one, and skips packets until it comes;
* switching layers without a broken picture: a viewer moving to another layer
  keeps the old one until the new layer's next keyframe (asked for at once),
  and takes the new layer from that keyframe on;
* recovery: a viewer's picture-loss request (RTCP PLI/FIR) asks its layer for
  a keyframe, at most one per :data:`KEYFRAME_MIN_INTERVAL` for everyone on it;
* no skipped packets: a VP8 delta frame needs the frame before it, so a
  viewer that falls :data:`QUEUE_LIMIT` packets behind drops its queue and
  waits for the next keyframe (it then gets the newest picture, never a
  backlog).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import os
import time
from typing import Any

import av
from av.video.frame import PictureType

from intercom_fsm.adapters.camera.encoder_parts import EncoderThread, Subscribers
from intercom_fsm.adapters.camera.frames import PIXEL_FORMAT, VIDEO_TIME_BASE, Picture, video_frame
from intercom_fsm.adapters.camera.hub import EncodedPackets, FrameHub
from intercom_fsm.adapters.camera.layers import Layer, LayerChooser, LayerPolicy, LayerRates
from intercom_fsm.adapters.camera.viewer_queue import QUEUE_LIMIT, Clock, PacketQueue
from intercom_fsm.adapters.rtp_payloads import Payloads, SharedPayloads

__all__ = ["QUEUE_LIMIT", "VP8_MIME", "PacketQueue", "SharedVp8Encoder", "default_bitrate"]

logger = logging.getLogger(__name__)

VP8_MIME = "video/vp8"
KEYFRAME_MIN_INTERVAL = 0.5
KEYFRAME_MAX_INTERVAL = 10.0
"""A keyframe at least this often, so a viewer whose loss reports never came
through still recovers."""
BITS_PER_PIXEL = 0.1
MIN_BITRATE = 100_000
MAX_BITRATE = 2_500_000
RATE_WINDOW = 2.0
"""Seconds over which a layer's sending rate is measured."""


def default_bitrate(width: int, height: int, fps: float) -> int:
    """0.1 bit per pixel per frame, within 100 kbit/s and 2.5 Mbit/s: about
    460 kbit/s at 640x480@15, the cap at 1280x720@30."""
    wanted = BITS_PER_PIXEL * width * height * fps
    return int(min(MAX_BITRATE, max(MIN_BITRATE, wanted)))


def vp8_context(width: int, height: int, fps: float, bitrate: int) -> av.VideoCodecContext:
    """libvpx set up for live video: real-time deadline, no look-ahead (no
    added latency), constant bitrate over a one-second buffer, the same
    speed/quality trade-off as aiortc's own VP8 encoder."""
    codec = av.CodecContext.create("libvpx", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width = width
    codec.height = height
    codec.pix_fmt = PIXEL_FORMAT
    codec.time_base = VIDEO_TIME_BASE
    codec.framerate = fractions.Fraction(fps).limit_denominator(1000)
    codec.bit_rate = bitrate
    codec.gop_size = max(1, round(fps * KEYFRAME_MAX_INTERVAL))
    codec.qmin = 2
    codec.qmax = 56
    codec.options = {
        "bufsize": str(bitrate),
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "deadline": "realtime",
        "cpu-used": "-6",
        "lag-in-frames": "0",
        "noise-sensitivity": "4",
        "static-thresh": "1",
        "undershoot-pct": "100",
        "overshoot-pct": "15",
        "partitions": "0",
    }
    # One thread costs the least CPU per picture (measured: 640x480 and
    # 1280x720 on 2 cores); a second helps only where cores are to spare.
    many_cores = (os.cpu_count() or 1) >= 4
    codec.thread_count = 2 if many_cores and width * height > 1280 * 720 else 1
    return codec


class RateMeter:
    """Bits per second over the last :data:`RATE_WINDOW` seconds."""

    def __init__(self, started: float) -> None:
        self._started = started
        self._sizes: collections.deque[tuple[float, int]] = collections.deque()
        self._bytes = 0

    def add(self, now: float, size: int) -> None:
        self._sizes.append((now, size))
        self._bytes += size
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        span = max(0.5, min(RATE_WINDOW, now - self._started))
        return self._bytes * 8 / span

    def _trim(self, now: float) -> None:
        while self._sizes and self._sizes[0][0] < now - RATE_WINDOW:
            self._bytes -= self._sizes.popleft()[1]


class LayerStream:
    """One layer's libvpx encoder and its thread, open only while someone
    needs the layer."""

    def __init__(self, layer: Layer, bitrate: int) -> None:
        self.layer = layer
        self.bitrate = bitrate
        self.codec: av.VideoCodecContext | None = None
        self.thread = EncoderThread(f"intercom-vp8-{layer.value}")
        self.payloads = SharedPayloads(VP8_MIME)
        """Its packets' RTP payloads, picture IDs counting this layer's pictures."""
        self.meter = RateMeter(0.0)
        self.keyframe_wanted = True
        self.last_keyframe = -float("inf")
        self.encodes = 0

    def open(self, width: int, height: int, fps: float, now: float) -> None:
        self.codec = vp8_context(width, height, fps, self.bitrate)
        self.meter = RateMeter(now)
        self.keyframe_wanted = True  # libvpx starts with one anyway; say so

    def close(self) -> None:
        self.codec = None
        self.thread.close()

    async def encode(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        return await self.thread.run(_encode, self.codec, frame)


class SharedVp8Encoder:
    """Encodes the hub's pictures once per needed layer while anyone subscribes.

    Runs as a task on the event loop that only waits: each encode goes to its
    layer's thread (the layers' in parallel), so the loop never holds a
    picture's encoding time. ``bitrate`` is the ceiling: the high layer's.
    """

    def __init__(
        self,
        hub: FrameHub,
        width: int,
        height: int,
        fps: float,
        bitrate: int,
        *,
        policy: LayerPolicy | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._width = width
        self._height = height
        self._fps = fps
        self.bitrate = bitrate
        self.rates = LayerRates.for_ceiling(bitrate)
        self._policy = policy
        self._clock = clock
        layers = [Layer.HIGH] + ([Layer.LOW] if self.rates.low is not None else [])
        self._streams = {layer: LayerStream(layer, self.rates.bitrate(layer)) for layer in layers}
        self._viewers: Subscribers[PacketQueue] = Subscribers(
            hub, self._encode_picture, self._release, name="shared VP8 encoder", log=logger
        )
        self.pictures_encoded = 0
        """Pictures encoded, each counted once whatever the number of layers."""
        self.keyframes = 0
        self.layer_switches = 0

    def subscribe(self, viewer: str = "") -> PacketQueue:
        chooser = LayerChooser(self.rates, self._clock(), self._policy)
        queue = PacketQueue(self, chooser, self._clock, viewer=viewer)
        self.request_keyframe(urgent=True, layer=queue.layer)
        return self._viewers.add(queue)

    def unsubscribe(self, queue: EncodedPackets) -> None:
        if isinstance(queue, PacketQueue):
            self._viewers.remove(queue)

    def request_keyframe(self, urgent: bool = False, layer: Layer | None = None) -> None:
        """The next picture of ``layer`` (of every layer: None) is encoded as a
        keyframe; a joining or switching viewer's request (``urgent``) is never
        rate-limited, a loss report is."""
        now = self._clock()
        streams = self._streams.values() if layer is None else [self._streams[layer]]
        for stream in streams:
            if urgent or now - stream.last_keyframe >= KEYFRAME_MIN_INTERVAL:
                stream.keyframe_wanted = True

    def viewers_on(self, layer: Layer) -> int:
        return sum(1 for queue in self._viewers.queues if queue.layer is layer)

    def encoding(self, layer: Layer) -> bool:
        """Whether ``layer`` has an open encoder right now."""
        stream = self._streams.get(layer)
        return stream is not None and stream.codec is not None

    def sent_rate(self, layer: Layer) -> float:
        """What ``layer`` has been producing lately, bit/s (0 when not encoded)."""
        stream = self._streams.get(layer)
        if stream is None or stream.codec is None:
            return 0.0
        return stream.meter.rate(self._clock())

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """``packet``'s RTP payloads, cut once for every viewer of its layer."""
        for stream in self._streams.values():
            found = stream.payloads.get(packet)
            if found is not None:
                return found
        return None

    def encodes(self, layer: Layer) -> int:
        return self._streams[layer].encodes if layer in self._streams else 0

    async def close(self) -> None:
        await self._viewers.close()

    async def _encode_picture(self, picture: Picture) -> None:
        self._choose_layers()
        streams = self._open_needed_layers()
        pts = self._viewers.pictures.pts(picture)
        encoded = await asyncio.gather(*(s.encode(self._frame(picture, pts, s)) for s in streams))
        self.pictures_encoded += 1
        self._deliver(dict(zip((s.layer for s in streams), encoded, strict=True)))

    def _release(self) -> None:
        for stream in self._streams.values():
            stream.close()

    def _choose_layers(self) -> None:
        now = self._clock()
        for queue in self._viewers.queues:
            if queue.chooser is None:
                continue
            switch = queue.chooser.decide(now, self.sent_rate)
            if switch is not None:
                self.layer_switches += 1
                self.request_keyframe(urgent=True, layer=switch.dest)
                logger.info(
                    "viewer %r: its video goes from the %s layer to the %s one: %s",
                    queue.viewer,
                    switch.source.value,
                    switch.dest.value,
                    switch.reason,
                )

    def _open_needed_layers(self) -> list[LayerStream]:
        queues = self._viewers.queues
        needed = {queue.layer for queue in queues} | {queue.target for queue in queues}
        now = self._clock()
        for layer, stream in self._streams.items():
            if layer in needed and stream.codec is None:
                stream.open(self._width, self._height, self._fps, now)
            elif layer not in needed and stream.codec is not None:
                stream.close()
        return [s for s in self._streams.values() if s.codec is not None]

    def _deliver(self, encoded: dict[Layer, list[av.Packet[Any]]]) -> None:
        now = self._clock()
        for layer, packets in encoded.items():
            stream = self._streams[layer]
            stream.encodes += 1
            for packet in packets:
                stream.payloads.add(packet)
                stream.meter.add(now, packet.size)
                if packet.is_keyframe:
                    self.keyframes += 1
                    stream.last_keyframe = now
        for queue in list(self._viewers.queues):
            queue.offer(encoded)

    def _frame(self, picture: Picture, pts: int, stream: LayerStream) -> av.VideoFrame:
        frame = video_frame(picture, pts)
        if stream.keyframe_wanted:
            stream.keyframe_wanted = False
            frame.pict_type = PictureType.I
        return frame


def _encode(codec: av.VideoCodecContext | None, frame: av.VideoFrame) -> list[av.Packet[Any]]:
    assert codec is not None
    packets = list(codec.encode(frame))
    for packet in packets:
        packet.time_base = VIDEO_TIME_BASE
    return packets
