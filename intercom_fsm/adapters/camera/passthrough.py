"""The camera's own H.264, sent to every viewer that can take it, untouched.

When the source delivers H.264 and a viewer's connection settled on H.264 at
the camera's profile (:mod:`intercom_fsm.adapters.peer_codecs`), that
viewer's track takes the camera's access units (Annex-B, parameter sets
before every IDR: :mod:`.h264`) as already encoded packets: no decoding, no
encoding, whatever the number of such viewers: each is cut into RTP payloads
once (:mod:`intercom_fsm.adapters.rtp_payloads`) and sent to each viewer.
A viewer's sender that takes frames directly (:meth:`H264Passthrough.send_directly`,
called by :mod:`intercom_fsm.adapters.rtp_sender`) is handed each access unit's
payloads as the access unit is handed out, in the same call, with no packet
object, queue or task between the camera and the wire.

What the shared stream cannot do, and what stands in for it:

* start anywhere: a viewer's queue waits for the camera's next IDR, so a
  joiner's first picture comes within one GOP (the camera's keyframe
  interval: set it to 1 to 2 s);
* answer a viewer's picture-loss request (PLI/FIR) with a keyframe: a V4L2
  H.264 camera is asked for one (when a viewer joins, too, at most once per
  :data:`CAMERA_KEYFRAME_INTERVAL` for a loss); an RTSP camera or a file
  cannot be asked, so a viewer that lost packets recovers at the next IDR.
  A viewer that falls behind drops its queue and waits for the next IDR
  (:mod:`.keyframe_queue`); so does a viewer sent to directly whose way out
  is backed up (a TCP connection to its TURN server slower than the stream:
  :data:`intercom_fsm.adapters.rtp_direct.BACKLOG_LIMIT`), so that its
  latency stays bounded;
* follow a viewer's bandwidth: the camera's bitrate is what everyone gets.

While the source is down the capture thread encodes its offline picture to
H.264 for these viewers (:class:`OfflineEncoder`), so they see it as the
others do; once the camera is back every queue waits for its next IDR.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import av
from av.video.frame import PictureType

from intercom_fsm.adapters import h264_payloads
from intercom_fsm.adapters.camera.frames import (
    I420,
    PIXEL_FORMAT,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
)
from intercom_fsm.adapters.camera.h264 import AccessUnit, split_annexb
from intercom_fsm.adapters.camera.hub import DirectSend, EncodedPackets, FrameHub
from intercom_fsm.adapters.camera.keyframe_queue import KeyframeQueue
from intercom_fsm.adapters.rtp_payloads import Payloads, SharedPayloads
from intercom_fsm.log_limit import LogLimiter

logger = logging.getLogger(__name__)

OFFLINE_BITRATE = 200_000
CAMERA_KEYFRAME_INTERVAL = 1.0
"""Seconds between two keyframes asked of the camera for viewers' losses:
one viewer's losses must not turn the camera's stream into keyframes."""


@attrs.define
class _DirectViewer:
    """A viewer whose sender takes its frames directly."""

    send: DirectSend
    frames_end: asyncio.Future[None]
    waiting_for_keyframe: bool


class H264Passthrough:
    """The fan-out of the camera's access units to the viewers' queues, or
    straight to the senders of the viewers that take them so.

    :meth:`publish` runs on the capture thread; everything else on the event
    loop, :meth:`deliver` too (where a camera read on the loop hands over).
    ``on_viewers_changed`` is called (on the loop) when a viewer joins or
    leaves, so the camera can stop decoding when nobody needs pictures.
    """

    def __init__(
        self,
        hub: FrameHub,
        on_viewers_changed: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._on_viewers_changed = on_viewers_changed
        self._clock = clock
        self._ask_camera: Callable[[], None] | None = None
        self._last_asked = -math.inf
        self._queues: set[KeyframeQueue] = set()
        self._direct: dict[KeyframeQueue, _DirectViewer] = {}
        """The viewers (by their queue) whose frames go straight to their sender."""
        self._lock = threading.Lock()
        self._wanted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_pts = -1
        self._payloads = SharedPayloads("video/H264")
        self.packets_published = 0
        self.keyframe_requests = 0
        self.frames_not_sent = 0
        """Frames a viewer sent to directly did not take (see :meth:`_send`)."""
        self._warnings = LogLimiter(logger)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop

    def ask_camera_with(self, ask: Callable[[], None] | None) -> None:
        """How to ask the camera for a keyframe (None: it cannot be asked)."""
        self._ask_camera = ask

    @property
    def viewers(self) -> int:
        return len(self._queues)

    # --- capture thread -------------------------------------------------------------

    @property
    def wanted(self) -> bool:
        """Someone takes the access units: worth handing them over."""
        with self._lock:
            return self._wanted

    def publish(self, unit: AccessUnit, captured_at: float) -> None:
        with self._lock:
            loop = self._loop if self._wanted else None
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self.deliver, unit, captured_at)

    # --- event loop -----------------------------------------------------------------

    def subscribe(self, viewer: str = "") -> KeyframeQueue:
        queue = KeyframeQueue()
        self._queues.add(queue)
        self._set_wanted()
        self._on_viewers_changed()
        self._ask_for_keyframe(urgent=True)
        return queue

    def unsubscribe(self, queue: EncodedPackets) -> None:
        if not isinstance(queue, KeyframeQueue) or queue not in self._queues:
            return
        queue.close()
        self._queues.discard(queue)
        direct = self._direct.pop(queue, None)
        if direct is not None and not direct.frames_end.done():
            direct.frames_end.set_result(None)
        self._set_wanted()
        self._on_viewers_changed()

    def send_directly(self, queue: EncodedPackets, send: DirectSend) -> asyncio.Future[None] | None:
        """From now on ``queue``'s viewer gets each access unit through
        ``send`` as :meth:`deliver` hands it out, what is queued first; the
        future completes when the viewer unsubscribes."""
        if not isinstance(queue, KeyframeQueue) or queue not in self._queues:
            return None
        if queue in self._direct:
            return None
        frames_end = asyncio.get_running_loop().create_future()
        viewer = _DirectViewer(send, frames_end, queue.waiting_for_keyframe)
        self._direct[queue] = viewer
        for packet in queue.take_all():
            made = self._payloads.get(packet)
            if made is None:  # long gone: the viewer starts again at the next IDR
                viewer.waiting_for_keyframe = True
                break
            self._send(queue, viewer, *made)
        return frames_end

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """``packet``'s RTP payloads, cut once for every viewer."""
        return self._payloads.get(packet)

    def request_keyframe(self, urgent: bool = False) -> None:
        """A viewer lost pictures: the camera is asked for a keyframe where
        it can be; the viewer recovers at the next IDR either way."""
        self.keyframe_requests += 1
        self._ask_for_keyframe(urgent)

    def _ask_for_keyframe(self, urgent: bool) -> None:
        now = self._clock()
        if self._ask_camera is None:
            return
        if urgent or now - self._last_asked >= CAMERA_KEYFRAME_INTERVAL:
            self._last_asked = now
            self._ask_camera()

    def restart(self) -> None:
        """The stream changed underneath (the camera came back): every viewer
        waits for the next IDR."""
        for queue in self._queues:
            queue.restart()
        for viewer in self._direct.values():
            viewer.waiting_for_keyframe = True

    def restart_soon(self) -> None:
        """:meth:`restart`, from the capture thread."""
        with self._lock:
            loop = self._loop if self._wanted else None
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.restart)

    def close(self) -> None:
        for queue in list(self._queues):
            self.unsubscribe(queue)

    def _set_wanted(self) -> None:
        with self._lock:
            self._wanted = bool(self._queues)

    def deliver(self, unit: AccessUnit, captured_at: float) -> None:
        """Hand ``unit`` to every viewer's queue, on the loop (what
        :meth:`publish` does from the capture thread; a camera read on the
        loop calls it directly)."""
        if not self._queues:
            return
        pts = max(self._hub.pts(captured_at), self._last_pts + 1)
        self._last_pts = pts
        self.packets_published += 1
        direct = self._direct
        payloads: list[bytes] | None = None
        if direct:
            # On the 90 kHz clock, the pts is the RTP timestamp payloads_of gives.
            payloads = h264_payloads.payloads(unit.nal_units or split_annexb(unit.data))
            for queue, viewer in list(direct.items()):
                if viewer.waiting_for_keyframe:
                    if not unit.keyframe:
                        continue
                    viewer.waiting_for_keyframe = False
                self._send(queue, viewer, payloads, pts)
            if len(direct) == len(self._queues):
                return
        packet = av.Packet(unit.data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = unit.keyframe
        if payloads is None:
            self._payloads.add(packet, unit.nal_units)
        else:  # cut once, for the direct viewers and the queued ones alike
            self._payloads.keep(packet, (payloads, pts))
        for queue in list(self._queues):
            if queue not in direct:
                queue.put(packet, unit.keyframe)

    def _send(
        self, queue: KeyframeQueue, viewer: _DirectViewer, payloads: list[bytes], timestamp: int
    ) -> None:
        try:
            sent = viewer.send(payloads, timestamp)
        except Exception:
            # The camera's other viewers go on; this one's sender stops.
            logger.exception("a viewer's RTP loop stopped")
            self.unsubscribe(queue)
            return
        if not sent:
            # What follows a frame not sent cannot be decoded. The camera is
            # not asked for a keyframe: a path that is backed up needs fewer bits.
            viewer.waiting_for_keyframe = True
            self.frames_not_sent += 1
            self._warnings.log(
                "frame not sent",
                "a viewer's frame could not be sent (its way out is backed up, or its"
                " sender paused or closing): it goes on at the camera's next keyframe",
            )


class OfflineEncoder:
    """The offline picture as H.264 for passthrough viewers, each one an IDR
    (it changes once a second and is sent at the configured rate; a flat
    picture's IDR is a few kilobytes). Constrained Baseline, which every
    H.264 decoder that takes the camera's profile also decodes."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width = width
        codec.height = height
        codec.pix_fmt = PIXEL_FORMAT
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = fractions.Fraction(fps).limit_denominator(1000)
        codec.bit_rate = OFFLINE_BITRATE
        codec.profile = "Baseline"
        codec.options = {"tune": "zerolatency", "preset": "ultrafast"}
        codec.thread_count = 1
        self._codec = codec
        self._step = max(1, round(VIDEO_CLOCK_RATE / fps))
        self._pts = 0

    def encode(self, pixels: I420) -> AccessUnit | None:
        frame = av.VideoFrame.from_numpy_buffer(pixels, format=PIXEL_FORMAT)
        frame.pts = self._pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = PictureType.I
        self._pts += self._step
        data = b"".join(bytes(packet) for packet in self._codec.encode(frame))
        return AccessUnit(data, keyframe=True) if data else None
