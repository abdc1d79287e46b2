"""Which layer a viewer gets, from synthetic receiver feedback: the rules of
``intercom_fsm.adapters.camera.layers`` and their hysteresis, on a fake clock.

A simulated receiver sends what aiortc's and Chrome's send: a REMB twice a
second and a receiver report (running counts of packets expected and lost)
once a second; the encoder asks for a decision at every picture (15 a second).
"""

from __future__ import annotations

from collections.abc import Callable

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
        return (sent - self.capacity) / sent if grown > 0.5 else 0.0

    @property
    def layer(self) -> Layer:
        return self.chooser.target


def receiver(**options: float | None) -> Receiver:
    return Receiver(LayerChooser(RATES, 0.0), **options)


def test_the_low_layer_is_about_a_third_of_the_ceiling() -> None:
    assert LayerRates(460_000, 161_000) == RATES
    assert LayerRates.for_ceiling(100_000).low is None  # too low to split
    assert LayerRates.for_ceiling(100_000).bitrate(Layer.LOW) == 100_000


def test_a_fast_viewer_stays_on_the_high_layer() -> None:
    fast = receiver()
    fast.run(120)
    assert fast.layer is Layer.HIGH and fast.switches == []


def test_an_estimate_far_below_what_is_sent_moves_the_viewer_down_at_once() -> None:
    slow = receiver()
    slow.run(5)
    slow.estimate = lambda layer: 255_000  # overuse on a 300 kbit/s path: 0.85 x 300
    slow.run(1)
    assert slow.layer is Layer.LOW
    (when, switch), *_ = slow.switches
    assert 5 < when < 5.6 and "estimate 255 kbit/s" in switch.reason


def test_an_estimate_just_below_moves_down_only_if_it_stays_there() -> None:
    path = receiver()
    path.run(5)
    path.estimate = lambda layer: 380_000  # 0.83 of the high rate
    path.run(2.5)
    assert path.layer is Layer.HIGH  # a dip, maybe a spurious overuse: hold
    path.estimate = lambda layer: int(1.5 * sending(layer))
    path.run(5)
    assert path.layer is Layer.HIGH
    path.estimate = lambda layer: 380_000
    path.run(4)
    assert path.layer is Layer.LOW
    assert "for 3 s" in path.switches[0][1].reason


def test_heavy_loss_moves_down() -> None:
    lossy = receiver()
    lossy.run(5)
    lossy.loss = 0.15
    lossy.run(4)
    assert lossy.layer is Layer.LOW and "lost" in lossy.switches[0][1].reason


@pytest.mark.parametrize("loss", [0.03, 0.05, 0.015])
def test_between_one_and_ten_percent_lost_a_viewer_holds_its_layer(loss: float) -> None:
    high = receiver()
    high.loss = loss
    high.run(120)
    assert high.layer is Layer.HIGH and high.switches == []

    low = receiver(packets_per_second=20)
    low.estimate = lambda layer: 255_000 if layer is Layer.HIGH else int(1.5 * LOW_RATE)
    low.loss = loss
    low.run(120)
    # Down once, then never a probe: the loss says the path is no better.
    assert low.layer is Layer.LOW and len(low.switches) == 1


def test_a_clean_low_viewer_probes_up_with_a_growing_back_off() -> None:
    # A 300 kbit/s path without loss: the high layer overloads it every time.
    # Its estimate never drops below what the low layer brought (255 kbit/s
    # after overuse, 241 before): only the growing round trip tells.
    slow = receiver(capacity=300_000)
    slow.estimate = lambda layer: int(1.5 * LOW_RATE) if layer is Layer.LOW else 255_000
    slow.run(100)
    moves = [(round(t, 1), s.dest) for t, s in slow.switches]
    downs = [t for t, layer in moves if layer is Layer.LOW]
    ups = [t for t, layer in moves if layer is Layer.HIGH]
    assert len(downs) == len(ups) + 1 and len(ups) >= 2
    # No probe before its back-off: 8 s, then 16, then 32 ...
    gaps = [up - down for down, up in zip(downs, ups, strict=False)]
    assert gaps[0] >= 8 and gaps[1] >= 16 and (len(gaps) < 3 or gaps[2] >= 32)
    # ... and each probe is undone within about a second.
    assert all(0 < down - up <= 1.1 for up, down in zip(ups, downs[1:], strict=False))
    assert all("round trip grew" in s.reason for _, s in slow.switches[2::2])
    assert slow.queue < 0.5  # never so long that the path dropped


def test_a_probe_that_holds_keeps_the_high_layer() -> None:
    path = receiver()
    path.estimate = lambda layer: 255_000
    path.run(3)
    assert path.layer is Layer.LOW
    # The path gets better: the estimate follows what arrives, no overuse.
    path.estimate = lambda layer: int(1.5 * sending(layer))
    path.run(30)
    assert path.layer is Layer.HIGH
    assert [s.dest for _, s in path.switches] == [Layer.LOW, Layer.HIGH]
    assert not path.chooser.probing


def test_a_stale_estimate_is_not_acted_on() -> None:
    # An outage: no RTCP at all. The last estimate was fine; nothing happens.
    quiet = receiver()
    quiet.run(5)
    quiet.estimate = lambda layer: None
    quiet.packets_per_second = 0
    quiet.run(30)
    assert quiet.layer is Layer.HIGH and quiet.switches == []


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
