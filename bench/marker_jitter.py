"""Bench viewers hand a video frame to the decoder as soon as its last packet
is in, as browsers do.

aiortc's receiver (1.x) only knows a frame is complete when the first packet
of the *next* frame arrives, so every frame it decodes waits one frame
interval (67 ms at 15 fps, 200 ms at 5 fps) in its jitter buffer. That wait is
the viewer's, not the device's: left in, it would be added to every
glass-to-glass figure of both clients. The sender marks the last packet of
each frame with the RTP marker bit; this buffer completes a frame on it.

Installed in the bench process only (:func:`install`), where the viewers run;
the clients under test are untouched.
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket


class MarkerJitterBuffer(JitterBuffer):
    payload_bytes = 0
    """Video payload received by every bench viewer in this process, for the
    bitrate each client actually sent."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        MarkerJitterBuffer.payload_bytes += len(packet.payload)
        return super().add(packet)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        frame = self._complete_marked_frame()
        if frame is not None:
            return frame
        return super()._remove_frame(sequence_number)

    def _complete_marked_frame(self) -> JitterFrame | None:
        """The oldest frame, when all of its packets up to the marked last one
        are here, contiguous from the buffer's origin."""
        origin = self._origin
        if origin is None:
            return None
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self.capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return None  # the older frame ends unmarked: the library's rule applies
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                # aiortc's receiver attaches the depayloaded bytes as ``_data``,
                # an attribute RtpPacket does not declare.
                data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
                return JitterFrame(data=data, timestamp=timestamp)
        return None


def install() -> None:
    # Audio buffers keep the library's class: only video frames are marked.
    original = JitterBuffer

    def choose(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
        if is_video:
            return MarkerJitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
        return original(capacity=capacity, prefetch=prefetch, is_video=is_video)

    # The receiver builds its buffers from this global of its module (imported
    # there, not exported): the patch replaces it in the module's namespace.
    vars(aiortc.rtcrtpreceiver)["JitterBuffer"] = choose
