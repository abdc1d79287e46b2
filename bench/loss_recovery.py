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

* :class:`RetryingNackGenerator` asks for a packet still missing again once
  a round trip has passed (on the next packet that arrives; never sooner, or
  a congested link would carry each retransmission many times), forgets a
  packet after :data:`GIVE_UP` seconds, and asks for none of those missed in
  a silence longer than that (an outage: their frames are stale);
* :class:`RecoveringJitterBuffer` (the bench's marker-bit buffer) skips to a
  keyframe as soon as one is complete behind older frames that are not, and
  gives up on its oldest frame when it has waited :data:`GIVE_UP` seconds for
  a missing packet: it drops the buffer up to the next VP8 keyframe (or
  everything until one comes) and asks the sender for one (PLI). It also
  counts the keyframes that arrive.

Installed in the viewer processes only (:func:`install`); the clients under
test are untouched, and both clients' viewers get the same treatment.
"""

from __future__ import annotations

import time

import aiortc.rtcrtpreceiver
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

from bench import marker_jitter
from bench.marker_jitter import MarkerJitterBuffer

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
    """Which packets to NACK now (``missing``, read by aiortc's receiver
    right after :meth:`add` returns True): new gaps at once, a packet asked
    for before again once a round trip has passed without it (the round trip
    learnt from how long retransmissions take), none after :data:`GIVE_UP`."""

    def __init__(self) -> None:
        super().__init__()
        self._asked: dict[int, tuple[float, float]] = {}
        """Missing sequence number: (first missed, last asked)."""
        self.round_trip = 0.2
        self._last_arrival: float | None = None

    def add(self, packet: RtpPacket) -> bool:
        now = time.monotonic()
        sequence = packet.sequence_number
        silent = self._last_arrival is not None and now - self._last_arrival > GIVE_UP
        self._last_arrival = now
        if self.max_seq is None:
            self.max_seq = sequence
            return False
        if uint16_gt(sequence, self.max_seq):
            gap = uint16_add(self.max_seq, 1)
            # After a silence (an outage) what is missing is too old to show.
            while uint16_gt(sequence, gap) and not silent:
                self._asked[gap] = (now, -float("inf"))
                gap = uint16_add(gap, 1)
            self.max_seq = sequence
        elif sequence in self._asked:
            asked = self._asked.pop(sequence)[1]
            if asked > 0:
                self.round_trip = 0.8 * self.round_trip + 0.2 * (now - asked)
        retry = max(0.15, 1.5 * self.round_trip)
        self._asked = {s: t for s, t in self._asked.items() if now - t[0] <= GIVE_UP}
        due = {s for s, (_, asked) in self._asked.items() if now - asked >= retry}
        for due_sequence in due:
            self._asked[due_sequence] = (self._asked[due_sequence][0], now)
        self.missing = due
        return bool(due)


class RecoveringJitterBuffer(MarkerJitterBuffer):
    keyframes = 0
    """Keyframes that reached the bench viewers of this process."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self._head: tuple[int, float] | None = None
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
        if frame is None and packet.marker and self._complete_keyframe_ends(packet):
            return pli, self._remove_frame(packet.sequence_number)
        if frame is None and self._stalled():
            self._skip_to_keyframe()
            if self._origin is None:
                return True, None
            return True, self._remove_frame(packet.sequence_number)
        return pli, frame

    def _complete_keyframe_ends(self, last: RtpPacket) -> bool:
        """``last`` completes a keyframe behind an older, incomplete frame: skip
        to it at once, as a browser's frame buffer does (the frames before a
        keyframe are not needed to decode it)."""
        assert self._origin is not None
        offset = uint16_add(last.sequence_number, -self._origin)
        if offset >= self.capacity:
            return False
        for back in range(offset, -1, -1):
            packet = self._packets[(self._origin + back) % self.capacity]
            if packet is None or packet.timestamp != last.timestamp:
                return False
            if starts_keyframe(packet):
                if back == 0:
                    return False  # the oldest frame itself: nothing to skip
                self.remove(back)
                self._head = None
                return True
        return False

    def _stalled(self) -> bool:
        """The oldest frame has waited :data:`GIVE_UP` seconds, for a packet
        at its start or in its middle."""
        origin = self._origin
        now = time.monotonic()
        if origin is None:
            self._head = None
            return False
        if self._head is None or self._head[0] != origin:
            self._head = (origin, now)
            return False
        return now - self._head[1] > GIVE_UP

    def _skip_to_keyframe(self) -> None:
        """Drop the broken frame and what depends on it: up to the next
        keyframe in the buffer, or everything until one arrives."""
        assert self._origin is not None
        self._head = None
        for count in range(1, self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is not None and starts_keyframe(packet):
                self.remove(count)
                return
        self.remove(self.capacity)
        self._origin = None
        self._skipping = True


def install() -> None:
    """The marker-bit buffer with loss recovery for video, retried NACKs."""
    marker_jitter.install()
    original = JitterBuffer

    def choose(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
        if is_video:
            return RecoveringJitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
        return original(capacity=capacity, prefetch=prefetch, is_video=is_video)

    # The receiver builds these from globals of its module: the patch replaces
    # them in the module's namespace (JitterBuffer is imported there, not exported).
    receiver_globals = vars(aiortc.rtcrtpreceiver)
    receiver_globals["JitterBuffer"] = choose
    receiver_globals["NackGenerator"] = RetryingNackGenerator
