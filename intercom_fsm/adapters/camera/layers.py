"""Which of the shared encoder's layers each viewer gets, from what its receiver reports.

The shared VP8 encoder (:mod:`.encoding`) can encode each picture twice: a
*high* layer at the ceiling (``VIDEO_BITRATE`` or the default for the size and
rate) and a *low* one at about a third of it. Every viewer is on one layer; a
:class:`LayerChooser` per viewer decides which, from the two things a WebRTC
receiver tells its sender over RTCP:

* its **estimate** (REMB): the bitrate its delay-based estimator thinks the
  path carries. Receivers (aiortc's, Chrome's) lower it only when queues grow
  (overuse: to 0.85 of what arrives) and never raise it above about 1.5 times
  what they receive, so an estimate under what we send means "too much";
* its **loss** (receiver reports): counts of packets expected and lost,
  turned here into the share lost over a window (before retransmission); and,
  from the same reports, the **round-trip time**, which grows with the queue
  on the path.

The rules, with hysteresis so that a viewer does not flap:

* start on high;
* high → low when, over a short window, more than 10 % is lost; or the
  estimate falls under 0.7 of what the high layer sends; or it stays under
  0.9 of it for 3 s (a link just below the high rate);
* low → high only as a *probe*, after a back-off (8 s, doubling up to 120 s
  after each probe that fails), and only when under 1 % was lost over the
  last 20 s: the estimate cannot say more (on the low layer it is capped
  near 1.5 times the low rate), so going up is tried, and undone at once when
  the path says it is too much: the estimate drops (overuse), more than 10 %
  is lost, or the round trip grows 200 ms over what it was before the probe
  (a queue filling: the first report after a second of overload shows it).
  A probe that holds for 6 s, or whose estimate reaches the high rate, ends
  the back-off;
* with loss between 1 % and 10 % a viewer stays where it is (as libwebrtc's
  loss-based rule holds its rate there).

A switch takes effect at the next keyframe of the new layer (the encoder asks
for one), so the viewer's picture never breaks. Everything here is plain
arithmetic on numbers passed in, with the time injected: the tests drive it
with synthetic reports.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable

import attrs


class Layer(enum.Enum):
    HIGH = "high"
    LOW = "low"


LOW_SHARE = 0.35
"""The low layer's bitrate as a share of the ceiling: 160 kbit/s under a
460 kbit/s ceiling (640x480@15), small enough for a 300 kbit/s link with loss
and retransmissions."""
MIN_LOW_BITRATE = 48_000
"""Below this a low layer is not worth its encode: one layer only."""


@attrs.frozen
class LayerRates:
    high: int
    low: int | None
    """None: the ceiling is too low to split; every viewer gets the high layer."""

    @classmethod
    def for_ceiling(cls, ceiling: int) -> LayerRates:
        low = round(ceiling * LOW_SHARE)
        return cls(ceiling, low if low >= MIN_LOW_BITRATE else None)

    def bitrate(self, layer: Layer) -> int:
        if layer is Layer.LOW and self.low is not None:
            return self.low
        return self.high


@attrs.frozen
class LayerPolicy:
    """The numbers of the rules above (seconds, shares of 1)."""

    down_loss: float = 0.10
    down_loss_window: float = 3.0
    down_loss_packets: int = 30
    up_loss: float = 0.01
    up_loss_window: float = 20.0
    up_loss_packets: int = 150
    far_below: float = 0.7
    below: float = 0.9
    below_seconds: float = 3.0
    overuse_drop: float = 0.97
    """An estimate this much under the one before is an overuse signal
    (receivers lower their estimate only on overuse)."""
    probe_rtt_rise: float = 0.2
    estimate_fresh: float = 2.5
    """An estimate older than this is not acted on (no RTCP in an outage)."""
    first_backoff: float = 8.0
    max_backoff: float = 120.0
    probe_hold: float = 6.0


@attrs.frozen
class Switch:
    source: Layer
    dest: Layer
    reason: str


ROUND_TRIP_MEMORY = 30.0
"""Seconds of round-trip samples kept: the baseline a probe is judged against."""

SentRate = Callable[[Layer], float]
"""Bits per second a layer has been sending lately."""


class LossWindow:
    """Shares lost over recent windows, from receiver reports' running counts
    (extended highest sequence number, cumulative packets lost)."""

    def __init__(self, keep: float) -> None:
        self._keep = keep
        self._reports: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, now: float, highest_sequence: int, packets_lost: int) -> None:
        if self._reports and highest_sequence < self._reports[-1][1]:
            self._reports.clear()  # a new stream (or a wrapped counter): start again
        self._reports.append((now, highest_sequence, packets_lost))
        while len(self._reports) > 2 and self._reports[1][0] < now - self._keep:
            self._reports.popleft()

    def share_lost(self, now: float, window: float, min_packets: int) -> float | None:
        """Lost / expected since the last report at least ``window`` old (or the
        oldest kept); None with fewer than ``min_packets`` expected."""
        if len(self._reports) < 2:
            return None
        last = self._reports[-1]
        base = self._reports[0]
        for report in self._reports:
            if report[0] <= now - window:
                base = report
        expected = last[1] - base[1]
        if expected < min_packets:
            return None
        return max(0, last[2] - base[2]) / expected


class LayerChooser:
    """One viewer's layer. Feed it the viewer's RTCP (:meth:`on_remb`,
    :meth:`on_report`) and ask :meth:`decide` on each picture."""

    def __init__(self, rates: LayerRates, now: float, policy: LayerPolicy | None = None) -> None:
        self.rates = rates
        self.policy = policy or LayerPolicy()
        self.target = Layer.HIGH
        self.switches = 0
        self._losses = LossWindow(keep=max(self.policy.up_loss_window, 30.0) + 5.0)
        self._round_trips: collections.deque[tuple[float, float]] = collections.deque()
        self._estimate: int | None = None
        self._estimate_at = -float("inf")
        self._overuse_at = -float("inf")
        self._below_since: float | None = None
        self._backoff = self.policy.first_backoff
        self._probe_after = now
        self._probe_started: float | None = None

    @property
    def probing(self) -> bool:
        return self._probe_started is not None

    @property
    def estimate(self) -> int | None:
        return self._estimate

    def on_remb(self, bitrate: int, now: float) -> None:
        previous = self._estimate
        if previous is not None and bitrate < previous * self.policy.overuse_drop:
            self._overuse_at = now
        self._estimate, self._estimate_at = bitrate, now

    def on_report(
        self,
        highest_sequence: int,
        packets_lost: int,
        now: float,
        round_trip: float | None = None,
    ) -> None:
        self._losses.add(now, highest_sequence, packets_lost)
        if round_trip is not None:
            self._round_trips.append((now, round_trip))
            while self._round_trips and self._round_trips[0][0] < now - ROUND_TRIP_MEMORY:
                self._round_trips.popleft()

    def loss(self, now: float, *, long: bool = False) -> float | None:
        policy = self.policy
        if long:
            return self._losses.share_lost(now, policy.up_loss_window, policy.up_loss_packets)
        return self._losses.share_lost(now, policy.down_loss_window, policy.down_loss_packets)

    def decide(self, now: float, sent: SentRate) -> Switch | None:
        """The switch to make now, if any (``target`` is already changed)."""
        if self.rates.low is None:
            return None
        if self.target is Layer.HIGH:
            reason = self._probe_failed(now) if self.probing else self._too_much(now, sent)
            if reason is not None:
                return self._go(Layer.LOW, now, reason)
            if self.probing:
                self._end_probe_if_held(now, sent)
            return None
        reason = self._may_probe(now)
        if reason is None:
            return None
        switch = self._go(Layer.HIGH, now, reason)
        self._probe_started = now
        return switch

    def _fresh_estimate(self, now: float) -> int | None:
        if now - self._estimate_at > self.policy.estimate_fresh:
            return None
        return self._estimate

    def _too_much(self, now: float, sent: SentRate) -> str | None:
        policy = self.policy
        loss = self.loss(now)
        if loss is not None and loss > policy.down_loss:
            return f"{loss:.0%} lost over {policy.down_loss_window:g} s"
        estimate = self._fresh_estimate(now)
        rate = sent(Layer.HIGH) or self.rates.high
        if estimate is None or estimate >= policy.below * rate:
            self._below_since = None
            return None
        if self._below_since is None:
            self._below_since = now
        said = f"estimate {estimate / 1000:.0f} kbit/s, sending {rate / 1000:.0f} kbit/s"
        if estimate < policy.far_below * rate:
            return said
        if now - self._below_since >= policy.below_seconds:
            return f"{said} for {policy.below_seconds:g} s"
        return None

    def _probe_failed(self, now: float) -> str | None:
        assert self._probe_started is not None
        loss = self.loss(now)
        if loss is not None and loss > self.policy.down_loss:
            return f"probe failed: {loss:.0%} lost"
        if self._overuse_at >= self._probe_started:
            return "probe failed: the receiver signalled overuse"
        before = [rtt for at, rtt in self._round_trips if at < self._probe_started]
        during = [rtt for at, rtt in self._round_trips if at >= self._probe_started]
        if before and during and during[-1] > min(before) + self.policy.probe_rtt_rise:
            rise = during[-1] - min(before)
            return f"probe failed: the round trip grew {rise * 1000:.0f} ms"
        return None

    def _end_probe_if_held(self, now: float, sent: SentRate) -> None:
        assert self._probe_started is not None
        estimate = self._fresh_estimate(now)
        rate = sent(Layer.HIGH) or self.rates.high
        caught_up = estimate is not None and estimate >= self.policy.below * rate
        if caught_up or now - self._probe_started >= self.policy.probe_hold:
            self._probe_started = None
            self._backoff = self.policy.first_backoff
            self._below_since = None

    def _may_probe(self, now: float) -> str | None:
        if now < self._probe_after or now - self._overuse_at < self.policy.first_backoff:
            return None
        loss = self.loss(now, long=True)
        if loss is None or loss >= self.policy.up_loss:
            return None
        return f"probe: {loss:.1%} lost over {self.policy.up_loss_window:g} s"

    def _go(self, layer: Layer, now: float, reason: str) -> Switch:
        switch = Switch(self.target, layer, reason)
        self.target = layer
        self.switches += 1
        if layer is Layer.LOW:
            self._probe_started = None
            self._probe_after = now + self._backoff
            self._backoff = min(self._backoff * 2, self.policy.max_backoff)
        self._below_since = None
        return switch
