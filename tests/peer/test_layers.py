"""Which layer a viewer gets, from synthetic receiver feedback: the rules of
``intercom_fsm.adapters.camera.layers`` and their hysteresis, on a fake clock.

A simulated receiver sends what aiortc's and Chrome's send: a REMB twice a
second and a receiver report (running counts of packets expected and lost)
once a second; the encoder asks for a decision at every picture (15 a second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict, Unpack

import pytest

from intercom_fsm.adapters.camera.layers import (
    Layer,
    LayerChooser,
    LayerRates,
    LossWindow,
    Switch,
)

HIGH_RATE, LOW_RATE = 460_000, 161_000
RATES = LayerRates.for_ceiling(HIGH_RATE)
PICTURE = 1 / 15


def sending(layer: Layer) -> float:
    return {Layer.HIGH: HIGH_RATE, Layer.LOW: LOW_RATE}[layer]


class Receiver:
    """A viewer's receiver on a path whose estimate and loss the test sets."""

    def __init__(
        self,
        chooser: LayerChooser,
        packets_per_second: float = 50.0,
        capacity: float | None = None,
    ) -> None:
        """``capacity``: the path's bit/s, with a 500 ms queue in front: what
        is sent beyond it queues (the round trip grows), then is dropped."""
        self.chooser = chooser
        self.capacity = capacity
        self.queue = 0.0
        self.queue_seen: list[float] = [0.0]
        self.now = 0.0
        self.estimate: Callable[[Layer], int | None] = lambda layer: int(1.5 * sending(layer))
        self.loss = 0.0
        self.packets_per_second = packets_per_second
        self._expected = 0.0
        self._lost = 0.0
        self._next_remb = 0.0
        self._next_report = 0.0
        self.switches: list[tuple[float, Switch]] = []

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += PICTURE
            overflow = self._queue_overflow()
            self._expected += self.packets_per_second * PICTURE
            self._lost += self.packets_per_second * PICTURE * max(self.loss, overflow)
            if self.now >= self._next_remb:
                self._next_remb += 0.5
                estimate = self.estimate(self.chooser.target)
                if estimate is not None:
                    self.chooser.on_remb(estimate, self.now)
            if self.now >= self._next_report:
                self._next_report += 1.0
                round_trip = 0.02 + self.queue
                self.chooser.on_report(int(self._expected), int(self._lost), self.now, round_trip)
            switch = self.chooser.decide(self.now, sending)
            if switch is not None:
                self.switches.append((self.now, switch))

    def _queue_overflow(self) -> float:
        """Advance the path's queue by a picture; the share of what is sent
        now that the full queue drops."""
        if self.capacity is None:
            return 0.0
        sent = sending(self.chooser.target)
        grown = self.queue + (sent - self.capacity) / self.capacity * PICTURE
        self.queue = min(0.5, max(0.0, grown))
        self.queue_seen.append(self.queue)
        return (sent - self.capacity) / sent if grown > 0.5 else 0.0

    def layer(self) -> Layer:
        """The layer the chooser sends now. A method, not a property: mypy
        would carry what an assert narrowed a property to across ``run()``."""
        return self.chooser.target


class ReceiverOptions(TypedDict, total=False):
    """What a test may set of :class:`Receiver` (its defaults otherwise)."""

    packets_per_second: float
    capacity: float | None


def receiver(**options: Unpack[ReceiverOptions]) -> Receiver:
    return Receiver(LayerChooser(RATES, 0.0), **options)


def test_the_low_layer_is_about_a_third_of_the_ceiling() -> None:
    assert LayerRates(460_000, 161_000) == RATES
    assert LayerRates.for_ceiling(100_000).low is None  # too low to split
    assert LayerRates.for_ceiling(100_000).bitrate(Layer.LOW) == 100_000


def on_high(capacity: float | None = None) -> Receiver:
    """A viewer that started, probed and holds the high layer (its path then
    carries ``capacity``)."""
    viewer = receiver()
    viewer.run(25)
    viewer.capacity = capacity
    assert viewer.layer() is Layer.HIGH and not viewer.chooser.probing
    viewer.switches.clear()
    return viewer


def test_a_new_viewer_starts_low_and_a_clean_path_takes_it_high_to_stay() -> None:
    fast = receiver()
    assert fast.layer() is Layer.LOW
    fast.run(120)
    assert fast.layer() is Layer.HIGH
    ((when, switch),) = fast.switches
    # As soon as 150 packets were reported (3 s at 50 a second), none lost.
    assert switch.dest is Layer.HIGH and 3 <= when <= 5 and "0.0% lost" in switch.reason


def test_overuse_with_an_estimate_well_below_what_is_sent_moves_down_at_once() -> None:
    slow = on_high()
    slow.estimate = lambda layer: 255_000  # overuse on a 300 kbit/s path: 0.85 x 300
    slow.run(1)
    assert slow.layer() is Layer.LOW
    ((when, switch),) = slow.switches
    assert when - 25 < 0.6 and "overuse: estimate 255 kbit/s" in switch.reason


def test_a_spurious_overuse_or_a_lagging_estimate_keeps_the_high_layer() -> None:
    path = on_high()
    # A spurious overuse on a fast path: the estimate falls to 0.85 of what
    # arrives, then rises 8 % a second, under what is sent for two seconds.
    estimates = iter(int(0.85 * HIGH_RATE * 1.08 ** (n / 2)) for n in range(1000))
    path.estimate = lambda layer: next(estimates)
    path.run(10)
    assert path.layer() is Layer.HIGH and path.switches == []


def test_a_path_just_under_the_high_rate_fills_its_queue_and_moves_down() -> None:
    path = on_high(capacity=420_000)  # the queue grows 0.1 s a second
    path.run(10)
    assert path.layer() is Layer.LOW
    ((when, switch),) = path.switches
    assert 25 + 2.5 < when < 25 + 5 and "round trip grew" in switch.reason
    assert path.queue < 0.5  # before the path dropped anything


def test_heavy_loss_moves_down() -> None:
    lossy = on_high()
    lossy.loss = 0.15
    lossy.run(4)
    assert lossy.layer() is Layer.LOW and "lost" in lossy.switches[0][1].reason


@pytest.mark.parametrize("loss", [0.03, 0.05, 0.09])
def test_between_the_thresholds_a_viewer_holds_its_layer(loss: float) -> None:
    high = on_high()
    high.loss = loss
    high.run(120)
    assert high.layer() is Layer.HIGH and high.switches == []

    low = receiver(packets_per_second=20)
    low.loss = loss
    low.run(120)
    # Never a probe: the loss says the path is no better than the low layer.
    assert low.layer() is Layer.LOW and low.switches == []


def test_a_clean_low_viewer_probes_up_with_a_growing_back_off() -> None:
    # A 300 kbit/s path without loss: the high layer overloads it every time.
    # Its estimate never drops below what the low layer brought (255 kbit/s
    # after overuse, 241 before): only the growing round trip tells.
    slow = receiver(capacity=300_000)
    slow.estimate = lambda layer: int(1.5 * LOW_RATE) if layer is Layer.LOW else 255_000
    slow.run(130)
    moves = [(round(t, 1), s.dest) for t, s in slow.switches]
    ups = [t for t, layer in moves if layer is Layer.HIGH]
    downs = [t for t, layer in moves if layer is Layer.LOW]
    assert len(ups) == len(downs) >= 3
    # Each probe is undone within about a second ...
    assert all(0 < down - up <= 1.1 for up, down in zip(ups, downs, strict=True))
    assert all("round trip grew" in s.reason for _, s in slow.switches[1::2])
    # ... and the next one waits twice as long: 8 s, 16 s, 32 s ...
    waits = [up - down for down, up in zip(downs, ups[1:], strict=False)]
    assert waits[0] >= 8 and waits[1] >= 16 and (len(waits) < 3 or waits[2] >= 32)
    # The queue in front of the path was full (dropping) for moments only.
    full = sum(1 for queued in slow.queue_seen if queued >= 0.5) * PICTURE
    assert full <= 0.5 * len(ups)


def test_a_probe_is_undone_at_the_first_overuse() -> None:
    slow = receiver()
    slow.estimate = lambda layer: int(1.5 * LOW_RATE)
    slow.run(2.5)
    assert slow.layer() is Layer.LOW
    slow.run(2)  # 150 packets reported, none lost: the probe starts
    assert slow.layer() is Layer.HIGH and slow.chooser.probing
    slow.estimate = lambda layer: 200_000  # the receiver's detector: overuse
    slow.run(0.6)
    assert slow.layer() is Layer.LOW
    assert "probe failed: overuse, estimate 200 kbit/s" in slow.switches[-1][1].reason


def test_a_probe_that_holds_keeps_the_high_layer() -> None:
    path = on_high()
    path.estimate = lambda layer: 255_000
    path.run(3)
    assert path.layer() is Layer.LOW
    # The path gets better: the estimate follows what arrives, no overuse.
    path.estimate = lambda layer: int(1.5 * sending(layer))
    path.run(30)
    assert path.layer() is Layer.HIGH
    assert [s.dest for _, s in path.switches] == [Layer.LOW, Layer.HIGH]
    assert not path.chooser.probing


def test_a_stale_estimate_is_not_acted_on() -> None:
    # An outage: no RTCP at all. The last estimate was fine; nothing happens.
    quiet = on_high()
    quiet.estimate = lambda layer: None
    quiet.packets_per_second = 0
    quiet.run(30)
    assert quiet.layer() is Layer.HIGH and quiet.switches == []


def test_one_layer_only_when_the_ceiling_is_low() -> None:
    chooser = LayerChooser(LayerRates.for_ceiling(100_000), 0.0)
    chooser.on_remb(10_000, 1.0)
    chooser.on_report(1000, 500, 1.0)
    assert chooser.decide(2.0, sending) is None and chooser.target is Layer.HIGH


def test_loss_window_counts_lost_over_expected_from_running_counts() -> None:
    window = LossWindow(keep=30)
    for second in range(11):
        window.add(float(second), 100 * second, 3 * second)
    assert window.share_lost(10.0, 5.0, 100) == pytest.approx(0.03)
    assert window.share_lost(10.0, 5.0, 1000) is None  # too few packets to say
    window.add(11.0, 50, 0)  # a new stream: counts start again
    assert window.share_lost(11.0, 5.0, 1) is None
