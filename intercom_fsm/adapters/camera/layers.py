"""Which of the shared encoder's layers each viewer gets, from what its receiver reports.

The shared VP8 encoder (:mod:`.encoding`) can encode each picture twice: a
*high* layer at the ceiling (``VIDEO_BITRATE`` or the default for the size and
rate) and a *low* one at about a third of it. Every viewer is on one layer; a
:class:`LayerChooser` per viewer decides which, from what a WebRTC receiver
tells its sender over RTCP:

* its **estimate** (REMB), from a delay-based estimator. Receivers (aiortc's,
  Chrome's) lower it only on *overuse*, when queues grow, to 0.85 of what
  arrives; otherwise they raise it by about 8 % a second, never above 1.5
  times what arrives. So a drop says "too much", and the value after it says
  about how much gets through; a value under what is sent, while it rises,
  only says the estimator has not caught up;
* its **loss** (receiver reports): counts of packets expected and lost,
  turned here into the share lost over a window (before retransmission);
* the **round-trip time** those reports give, which grows with the queue in
  front of a slow link.

The rules, with hysteresis so that a viewer does not flap:

* start on low, as WebRTC senders start low and ramp up: a new viewer's path
  is unknown, and flooding a slow one freezes it;
* low → high only as a *probe*: the estimate cannot say more (on the low layer
  it is capped near 1.5 times the low rate), so going up is tried when the
  path looks clean, under 1.5 % lost over the last 30 s (at least 150
  packets; a quiet picture that sends fewer is judged on what 10 s brought);
  a path that does not is looked at again 8 s later. A probe is undone when
  the receiver signals overuse with an estimate under 0.75 of the high rate
  (its delay-based detector reacts within half a second of a queue starting
  to grow), more than 10 % is lost, or the round trip grows 200 ms over what
  it was before (a queue filling). A failed probe doubles the wait before the
  next (8 s up to 120 s). A probe has held when, after 4 s at least, the
  estimate reaches 0.9 of what the high layer sends, or after 12 s without a
  sign against it;
* high → low when more than 10 % is lost over 3 s; or the round trip grows
  300 ms over its lowest of the last 30 s (a standing queue); or the
  receiver signals overuse with an estimate under 0.75 of what the high layer
  sends (a spurious overuse on a fast path lands near 0.85 of it, and is
  ignored);
* with loss between 1.5 % and 10 % a viewer stays where it is (as libwebrtc's
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
    up_loss: float = 0.015
    up_loss_window: float = 30.0
    up_loss_packets: int = 150
    quiet_after: float = 10.0
    quiet_packets: int = 30
    """A stream that sent fewer than ``up_loss_packets`` in ``quiet_after``
    seconds (a still picture) is judged on at least this many."""
    overuse_below: float = 0.75
    overuse_drop: float = 0.97
    """An estimate this much under the one before is an overuse signal
    (receivers lower their estimate only on overuse)."""
    queue_rise: float = 0.3
    probe_rtt_rise: float = 0.2
    estimate_fresh: float = 2.5
    """An estimate older than this is not acted on (no RTCP in an outage)."""
    first_backoff: float = 8.0
    max_backoff: float = 120.0
    probe_min: float = 4.0
    probe_hold: float = 12.0


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

    def span(self) -> float:
        """Seconds between the oldest and the newest report kept."""
        return self._reports[-1][0] - self._reports[0][0] if self._reports else 0.0

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
        self.target = Layer.LOW if rates.low is not None else Layer.HIGH
        self.switches = 0
        self._losses = LossWindow(keep=max(self.policy.up_loss_window, 30.0) + 5.0)
        self._round_trips: collections.deque[tuple[float, float]] = collections.deque()
        self._estimate: int | None = None
        self._estimate_at = -float("inf")
        self._overuse: tuple[float, int] | None = None
        """When the receiver last lowered its estimate, and to what."""
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
            self._overuse = (now, bitrate)
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
            loss = self._losses.share_lost(now, policy.up_loss_window, policy.up_loss_packets)
            if loss is None and self._losses.span() >= policy.quiet_after:
                loss = self._losses.share_lost(now, policy.up_loss_window, policy.quiet_packets)
            return loss
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

    def _too_much(self, now: float, sent: SentRate) -> str | None:
        policy = self.policy
        loss = self.loss(now)
        if loss is not None and loss > policy.down_loss:
            return f"{loss:.0%} lost over {policy.down_loss_window:g} s"
        rise = self._round_trip_rise(since=now - ROUND_TRIP_MEMORY)
        if rise is not None and rise > policy.queue_rise:
            return f"the round trip grew {rise * 1000:.0f} ms"
        if self._overuse is not None and now - self._overuse[0] <= policy.estimate_fresh:
            estimate = self._overuse[1]
            rate = sent(Layer.HIGH) or self.rates.high
            if estimate < policy.overuse_below * rate:
                self._overuse = None  # one signal, one decision
                return (
                    f"overuse: estimate {estimate / 1000:.0f} kbit/s,"
                    f" sending {rate / 1000:.0f} kbit/s"
                )
        return None

    def _probe_failed(self, now: float) -> str | None:
        assert self._probe_started is not None
        loss = self.loss(now)
        if loss is not None and loss > self.policy.down_loss:
            return f"probe failed: {loss:.0%} lost"
        overuse = self._overuse
        limit = self.policy.overuse_below * self.rates.high
        if overuse is not None and overuse[0] >= self._probe_started and overuse[1] < limit:
            return f"probe failed: overuse, estimate {overuse[1] / 1000:.0f} kbit/s"
        rise = self._round_trip_rise(since=self._probe_started, baseline_before=True)
        if rise is not None and rise > self.policy.probe_rtt_rise:
            return f"probe failed: the round trip grew {rise * 1000:.0f} ms"
        return None

    def _round_trip_rise(self, since: float, baseline_before: bool = False) -> float | None:
        """The latest round trip over the lowest one: the lowest before
        ``since`` (``baseline_before``) or since it."""
        if not self._round_trips:
            return None
        latest_at, latest = self._round_trips[-1]
        if baseline_before:
            before = [rtt for at, rtt in self._round_trips if at < since]
            if not before or latest_at < since:
                return None
            return latest - min(before)
        return latest - min(rtt for at, rtt in self._round_trips if at >= since)

    def _end_probe_if_held(self, now: float, sent: SentRate) -> None:
        assert self._probe_started is not None
        fresh = now - self._estimate_at <= self.policy.estimate_fresh
        rate = sent(Layer.HIGH) or self.rates.high
        caught_up = fresh and self._estimate is not None and self._estimate >= 0.9 * rate
        held = now - self._probe_started
        if (caught_up and held >= self.policy.probe_min) or held >= self.policy.probe_hold:
            self._probe_started = None
            self._backoff = self.policy.first_backoff

    def _may_probe(self, now: float) -> str | None:
        if now < self._probe_after:
            return None
        loss = self.loss(now, long=True)
        if loss is None:
            return None  # not enough reports yet: ask again at the next picture
        if loss >= self.policy.up_loss:
            # One look per back-off period, not a sliding search for the one
            # clean stretch that a lossy path has now and then.
            self._probe_after = now + self.policy.first_backoff
            return None
        return f"probe: {loss:.1%} lost over the last {self.policy.up_loss_window:g} s"

    def _go(self, layer: Layer, now: float, reason: str) -> Switch:
        switch = Switch(self.target, layer, reason)
        self.target = layer
        self.switches += 1
        if layer is Layer.LOW:
            self._probe_started = None
            self._probe_after = now + self._backoff
            self._backoff = min(self._backoff * 2, self.policy.max_backoff)
        return switch
