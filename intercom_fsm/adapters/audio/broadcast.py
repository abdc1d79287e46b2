"""The door's microphone to every listening viewer, encoded once.

aiortc encodes a track once per viewer. Its sender also takes already
encoded packets (:class:`av.Packet`) and only packs them (``OpusEncoder.pack``
in aiortc 1.16: one packet, one RTP payload, the timestamp converted from the
packet's time base), so the capture thread encodes each 20 ms of sound once
with :class:`OpusStream`, and :class:`PacketHub` hands the same packet to every
listener's :class:`ListenerTrack`.

Each listener has a short queue (:data:`QUEUE_LIMIT` packets, 100 ms): a
viewer that does not keep up loses its oldest packets, never delays the
others, and never lets its own delay grow. Opus needs no keyframe, so a
listener can start at any packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import threading
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.audio.blocks import OPUS_FRAME, RATE, Samples
from intercom_fsm.adapters.rtp_payloads import Payloads, SharedPayloads
from intercom_fsm.packet_queue import ViewerPackets

QUEUE_LIMIT = 5
TIME_BASE = fractions.Fraction(1, RATE)


class OpusStream:
    """Mono Opus at 48 kHz in 20 ms frames, for speech; fed 10 ms blocks."""

    def __init__(self, bitrate: int) -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = RATE
        codec.layout = "mono"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = TIME_BASE
        codec.options = {"application": "voip", "frame_duration": "20"}
        self._codec = codec
        self._pending: list[Samples] = []
        self._pts = 0

    def encode(self, block: Samples) -> list[av.Packet[Any]]:
        self._pending.append(block)
        if sum(len(b) for b in self._pending) < OPUS_FRAME:
            return []
        samples = np.concatenate(self._pending)
        self._pending = []
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = TIME_BASE
        frame.pts = self._pts
        self._pts += len(samples)
        packets = list(self._codec.encode(frame))
        for packet in packets:
            packet.time_base = TIME_BASE
        return packets

    def skip(self, samples: int) -> None:
        """Samples not encoded (nobody listened, or the device was away):
        the timeline keeps the gap so receivers see it as one."""
        self._pending = []
        self._pts += samples


class ListenerQueue(ViewerPackets):
    """A listener that falls behind loses the oldest sound, never gets later."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def put(self, packet: av.Packet[Any]) -> None:
        if len(self) >= QUEUE_LIMIT:
            self._drop_oldest()
            self.dropped += 1
        self._append(packet)


class PacketHub:
    """``publish`` runs on the capture thread; the rest on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[ListenerQueue] = set()
        self._payloads = SharedPayloads("audio/opus")
        self._listeners = 0
        self.delivered = 0
        self.dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop

    @property
    def listeners(self) -> int:
        """Read from the capture thread to know whether to encode at all."""
        return self._listeners

    def subscribe(self) -> ListenerQueue:
        queue = ListenerQueue()
        self._queues.add(queue)
        self._listeners = len(self._queues)
        return queue

    def unsubscribe(self, queue: ListenerQueue) -> None:
        queue.close()
        if queue in self._queues:
            self._queues.discard(queue)
            self.delivered += queue.delivered
            self.dropped += queue.dropped
        self._listeners = len(self._queues)

    def publish(self, packets: list[av.Packet[Any]]) -> None:
        with self._lock:
            loop = self._loop
        if loop is None or not packets:
            return
        # The loop may have closed during shutdown: nobody listens then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._deliver, packets)

    def _deliver(self, packets: list[av.Packet[Any]]) -> None:
        if not self._queues:
            return
        for packet in packets:
            self._payloads.add(packet)
        for queue in list(self._queues):
            for packet in packets:
                queue.put(packet)

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        return self._payloads.get(packet)

    def counts(self) -> tuple[int, int]:
        """(packets delivered, packets dropped) over every listener, past and present."""
        live = list(self._queues)
        return (
            self.delivered + sum(q.delivered for q in live),
            self.dropped + sum(q.dropped for q in live),
        )


class ListenerTrack(MediaStreamTrack):
    """One viewer's audio track: the shared Opus packets. ``stop()`` on the
    event loop (aiortc calls it when the viewer's sender ends)."""

    kind = "audio"

    def __init__(self, hub: PacketHub, on_stop: Callable[[ListenerTrack], None]) -> None:
        super().__init__()
        self._hub = hub
        self._queue = hub.subscribe()
        self._on_stop = on_stop

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """One of this track's packets as its RTP payload, made once for every listener."""
        return self._hub.payloads_of(packet)

    async def recv(self) -> av.Packet[Any]:
        packet = await self._queue.get()
        if packet is None or self.readyState != "live":
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._hub.unsubscribe(self._queue)
            self._on_stop(self)
