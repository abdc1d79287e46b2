"""Bench viewers on lossy links recover from lost packets as browsers do.

aiortc's receiver (1.x) asks for a lost packet once, when it notices the
gap; if that NACK or the retransmission is lost too, it never asks again,
and its jitter buffer, which releases frames strictly in order, holds every
later frame (keyframes included) until the buffer overflows: 512 packets,
half a minute at a low bitrate. A browser's receiver repeats its NACKs,
gives up on a packet that does not come, drops what cannot be decoded and
asks for a keyframe. Measured with aiortc's behaviour, every client would
"freeze" for tens of seconds on a 3 % lossy link whatever it sent, so the
network bench's viewers (and the slow-link tests') behave like a browser:

* :class:`RetryingNackGenerator` announces the packets still missing again
  every :data:`NACK_RETRY` seconds (on the next packet that arrives), and
  forgets a packet after :data:`GIVE_UP` seconds;
* :class:`RecoveringJitterBuffer` (the bench's marker-bit buffer) gives up on
  a frame whose packets are still missing after :data:`GIVE_UP` seconds: it
  drops the buffer up to the next VP8 keyframe, and asks the sender for one
  (PLI). It also counts the keyframes that arrive.

Installed in the viewer processes only (:func:`install`); the clients under
test are untouched, and both clients' viewers get the same treatment.
"""

from __future__ import annotations

import time

import aiortc.rtcrtpreceiver
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from bench import marker_jitter
from bench.marker_jitter import MarkerJitterBuffer

NACK_RETRY = 0.1
GIVE_UP = 1.0


def starts_keyframe(packet: RtpPacket) -> bool:
    """The first packet of a VP8 keyframe (RFC 7741: S bit, partition 0, P bit clear)."""
    try:
        descriptor, data = VpxPayloadDescriptor.parse(packet.payload)
    except ValueError:
        return False
    return bool(descriptor.partition_start and descriptor.partition_id == 0 and data) and not (
        data[0] & 0x01
    )


class RetryingNackGenerator(aiortc.rtcrtpreceiver.NackGenerator):
    def __init__(self) -> None:
        super().__init__()
        self._missed_at: dict[int, float] = {}
        self._last_nack = 0.0

    def add(self, packet: RtpPacket) -> bool:
        """True when the receiver should send a NACK for ``missing`` now."""
        new_gap = super().add(packet)
        now = time.monotonic()
        for sequence in list(self.missing):
            if now - self._missed_at.setdefault(sequence, now) > GIVE_UP:
                self.missing.discard(sequence)
        self._missed_at = {s: t for s, t in self._missed_at.items() if s in self.missing}
        if self.missing and (new_gap or now - self._last_nack >= NACK_RETRY):
            self._last_nack = now
            return True
        return False


class RecoveringJitterBuffer(MarkerJitterBuffer):
    keyframes = 0
    """Keyframes that reached the bench viewers of this process."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self._hole: tuple[int, float] | None = None
        self._skipping = False
        self._last_keyframe_timestamp: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        keyframe = starts_keyframe(packet)
        if keyframe and packet.timestamp != self._last_keyframe_timestamp:
            self._last_keyframe_timestamp = packet.timestamp
            RecoveringJitterBuffer.keyframes += 1
        if self._skipping:
            if not keyframe:
                MarkerJitterBuffer.payload_bytes += len(packet.payload)
                return False, None
            self._skipping = False
            self._origin = None
        pli, frame = super().add(packet)
        if frame is None and self._stalled():
            self._skip_to_keyframe()
            return True, self._remove_frame(packet.sequence_number)
        return pli, frame

    def _stalled(self) -> bool:
        """The oldest frame has waited :data:`GIVE_UP` seconds for a missing packet."""
        origin = self._origin
        if origin is None or self._packets[origin % self.capacity] is not None:
            self._hole = None
            return False
        now = time.monotonic()
        if self._hole is None or self._hole[0] != origin:
            self._hole = (origin, now)
            return False
        return now - self._hole[1] > GIVE_UP

    def _skip_to_keyframe(self) -> None:
        assert self._origin is not None
        self._hole = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is not None and starts_keyframe(packet):
                self.remove(count)
                return
        self.remove(self.capacity)
        self._skipping = True


def install() -> None:
    """The marker-bit buffer with loss recovery for video, retried NACKs."""
    marker_jitter.install()
    original = JitterBuffer

    def choose(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
        if is_video:
            return RecoveringJitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
        return original(capacity=capacity, prefetch=prefetch, is_video=is_video)

    aiortc.rtcrtpreceiver.JitterBuffer = choose  # type: ignore[misc,assignment]
    aiortc.rtcrtpreceiver.NackGenerator = RetryingNackGenerator  # type: ignore[misc]
