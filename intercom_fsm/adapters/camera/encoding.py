"""One VP8 encoder shared by every viewer that negotiated VP8.

aiortc encodes a track once per viewer: three viewers of the same camera cost
three encodes of the same picture, which is most of the daemon's CPU. When a
viewer's connection settles on VP8, its track switches to the shared encoder
(:meth:`ViewerTrack.share_encoder`) and hands aiortc already encoded
packets (:class:`av.Packet`), which aiortc only packetizes (its sender takes a packet
as "pre-encoded data"). Each picture is then encoded once, on an executor
thread, whatever the number of viewers.

What a shared stream needs that a per-viewer one gets for free:

* a decodable start: every viewer starts at a keyframe. A viewer joining
  asks the encoder for one, and skips packets until it comes;
* recovery: a viewer's picture-loss request (RTCP PLI/FIR) asks for a keyframe
  too, at most one per :data:`KEYFRAME_MIN_INTERVAL` for everyone;
* no skipped packets: a VP8 delta frame needs the frame before it, so a
  viewer that falls :data:`QUEUE_LIMIT` packets behind drops its queue and
  waits for the next keyframe (it then gets the newest picture, never a
  backlog);
* one bitrate for all: the target is ``VIDEO_BITRATE`` or
  :func:`default_bitrate`; the receivers' bandwidth estimates (REMB), which
  aiortc applies to per-viewer encoders, are not followed. A viewer that must
  adapt gets per-viewer encoding with ``VIDEO_SHARED_ENCODER=0``.
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

from intercom_fsm.adapters.camera.frames import PIXEL_FORMAT, VIDEO_TIME_BASE, Picture, video_frame
from intercom_fsm.adapters.camera.hub import EncodedPackets, FrameHub

logger = logging.getLogger(__name__)

VP8_MIME = "video/vp8"
QUEUE_LIMIT = 8
KEYFRAME_MIN_INTERVAL = 0.5
KEYFRAME_MAX_INTERVAL = 10.0
"""A keyframe at least this often, so a viewer whose loss reports never came
through still recovers."""
BITS_PER_PIXEL = 0.1
MIN_BITRATE = 100_000
MAX_BITRATE = 2_500_000


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


class PacketQueue:
    """One viewer's share of the encoded stream, in order, from a keyframe on."""

    def __init__(self, encoder: SharedVp8Encoder) -> None:
        self._encoder = encoder
        self._packets: collections.deque[av.Packet[Any]] = collections.deque()
        self._ready = asyncio.Event()
        self.waiting_for_keyframe = True
        self.closed = False
        self.delivered = 0
        self.resets = 0

    def put(self, packet: av.Packet[Any]) -> None:
        if self.waiting_for_keyframe:
            if not packet.is_keyframe:
                return
            self.waiting_for_keyframe = False
        if len(self._packets) >= QUEUE_LIMIT:
            # Too far behind: what is queued is stale, and skipping part of it
            # would break the picture. Start again from the next keyframe.
            self._packets.clear()
            self.waiting_for_keyframe = True
            self.resets += 1
            self._encoder.request_keyframe()
            return
        self._packets.append(packet)
        self._ready.set()

    async def get(self) -> av.Packet[Any] | None:
        """The next packet; None once the queue is closed."""
        while not self._packets:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class SharedVp8Encoder:
    """Encodes the hub's pictures once while anyone subscribes.

    Runs as a task on the event loop that only waits: each encode goes to the
    default executor, so the loop never holds a picture's encoding time.
    """

    def __init__(self, hub: FrameHub, width: int, height: int, fps: float, bitrate: int) -> None:
        self._hub = hub
        self._width = width
        self._height = height
        self._fps = fps
        self.bitrate = bitrate
        self._queues: set[PacketQueue] = set()
        self._task: asyncio.Task[None] | None = None
        self._keyframe_wanted = True
        self._last_keyframe = -float("inf")
        self._last_sequence: int | None = None
        self._last_pts = -1
        self.pictures_encoded = 0
        self.keyframes = 0

    def subscribe(self) -> PacketQueue:
        queue = PacketQueue(self)
        self._queues.add(queue)
        self.request_keyframe(urgent=True)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, queue: EncodedPackets) -> None:
        if not isinstance(queue, PacketQueue):
            return
        queue.close()
        self._queues.discard(queue)
        if not self._queues:
            self._hub.wake()  # the task notices and ends

    def request_keyframe(self, urgent: bool = False) -> None:
        """The next picture is encoded as a keyframe; a joining viewer's
        request (``urgent``) is never rate-limited, a loss report is."""
        if urgent or time.monotonic() - self._last_keyframe >= KEYFRAME_MIN_INTERVAL:
            self._keyframe_wanted = True

    async def close(self) -> None:
        for queue in list(self._queues):
            self.unsubscribe(queue)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        codec = vp8_context(self._width, self._height, self._fps, self.bitrate)
        try:
            while self._queues:
                picture = self._next_picture()
                if picture is None:
                    await self._hub.wait_for_news()
                    continue
                frame = self._frame(picture)
                packets = await loop.run_in_executor(None, _encode, codec, frame)
                self.pictures_encoded += 1
                for packet in packets:
                    if packet.is_keyframe:
                        self.keyframes += 1
                        self._last_keyframe = time.monotonic()
                    for queue in list(self._queues):
                        queue.put(packet)
        except Exception:
            logger.exception("the shared VP8 encoder stopped")
            for queue in list(self._queues):
                queue.close()
            raise

    def _next_picture(self) -> Picture | None:
        picture = self._hub.latest
        if picture is None or picture.sequence == self._last_sequence:
            return None
        if (
            self._last_sequence is None
            and self._hub.age(picture.captured_at) > self._hub.stale_after
        ):
            return None  # left over from before a standby: wait for a fresh one
        self._last_sequence = picture.sequence
        return picture

    def _frame(self, picture: Picture) -> av.VideoFrame:
        pts = max(self._hub.pts(picture.captured_at), self._last_pts + 1)
        self._last_pts = pts
        frame = video_frame(picture, pts)
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            frame.pict_type = PictureType.I
        return frame


def _encode(codec: av.VideoCodecContext, frame: av.VideoFrame) -> list[av.Packet[Any]]:
    packets = list(codec.encode(frame))
    for packet in packets:
        packet.time_base = VIDEO_TIME_BASE
    return packets
