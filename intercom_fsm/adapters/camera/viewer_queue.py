"""One viewer's share of a shared encoder's stream (see :mod:`.encoding`).

A :class:`PacketQueue` holds the packets of the layer its viewer is on, in
order, from a keyframe on; it moves its viewer to another layer only at that
layer's keyframe, and restarts at a keyframe when the viewer falls behind or
its path comes back after an outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import av

from intercom_fsm.adapters.camera.layers import Layer, LayerChooser
from intercom_fsm.packet_queue import ViewerPackets

QUEUE_LIMIT = 8
REPORTS_RESUMED_AFTER = 3.0
"""Seconds without a receiver report (receivers send one about every second)
after which the next one means the path has come back."""

Clock = Callable[[], float]


class KeyframeSource(Protocol):
    def request_keyframe(self, urgent: bool = False, layer: Layer | None = None) -> None: ...


class PacketQueue(ViewerPackets):
    """One viewer's share of the encoded stream: its layer's packets, in
    order, from a keyframe on. Its :class:`LayerChooser` (none: always the
    high layer) hears the viewer's RTCP feedback."""

    def __init__(
        self,
        encoder: KeyframeSource,
        chooser: LayerChooser | None = None,
        clock: Clock = time.monotonic,
        viewer: str = "",
    ) -> None:
        super().__init__()
        self.viewer = viewer
        """Whose queue this is, for the log."""
        self._encoder = encoder
        self.chooser = chooser
        self._clock = clock
        self.layer = chooser.target if chooser is not None else Layer.HIGH
        """The layer this viewer receives now."""
        self.waiting_for_keyframe = True
        self.resets = 0
        self.switches = 0
        self._last_report = float("inf")

    @property
    def target(self) -> Layer:
        """The layer this viewer should receive (it moves at that layer's next keyframe)."""
        return self.chooser.target if self.chooser is not None else self.layer

    def offer(self, packets: Mapping[Layer, list[av.Packet[Any]]]) -> None:
        """One picture's packets, per layer: take this viewer's."""
        target = self.target
        if target is not self.layer:
            arriving = packets.get(target)
            if self.waiting_for_keyframe or (arriving and arriving[0].is_keyframe):
                self.layer = target
                self.switches += 1
        for packet in packets.get(self.layer, ()):
            self.put(packet)

    def put(self, packet: av.Packet[Any]) -> None:
        if self.waiting_for_keyframe:
            if not packet.is_keyframe:
                return
            self.waiting_for_keyframe = False
        if len(self) >= QUEUE_LIMIT:
            # Too far behind: what is queued is stale, and skipping part of it
            # would break the picture. Start again from the next keyframe.
            self._clear()
            self.waiting_for_keyframe = True
            self.resets += 1
            self._encoder.request_keyframe(layer=self.target)
            return
        self._append(packet)

    def request_keyframe(self) -> None:
        """The viewer lost pictures (a PLI or FIR)."""
        self._encoder.request_keyframe(layer=self.layer)

    def on_remb(self, bitrate: int) -> None:
        if self.chooser is not None:
            self.chooser.on_remb(bitrate, self._clock())

    def on_receiver_report(
        self, highest_sequence: int, packets_lost: int, round_trip: float | None
    ) -> None:
        now = self._clock()
        if now - self._last_report > REPORTS_RESUMED_AFTER:
            # The path was gone (an outage): what the viewer holds is stale
            # or broken. A keyframe now, not after its loss reports.
            self._encoder.request_keyframe(layer=self.layer)
        self._last_report = now
        if self.chooser is not None:
            self.chooser.on_report(highest_sequence, packets_lost, now, round_trip)
