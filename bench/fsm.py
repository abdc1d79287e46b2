"""Events per second through the lifecycle machine (target: above 10,000),
beside the `transitions` library's own floor (a trivial three-state sync
Machine), in one run.

The event sequence is long, valid and random: recorded once from a seeded walk
(happy path, viewers joining and leaving, sockets dropping, refreshes), then
replayed into a fresh machine with the same seed, so only ``handle()`` is
timed.

    python bench/fsm.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from transitions import Machine

from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State
from intercom_fsm.testing import FakeClock, ResourceLedger, happy_event

SEED = 2026
TARGET_EVENTS_PER_SECOND = 10_000


def new_machine() -> tuple[LifecycleMachine, FakeClock]:
    clock = FakeClock()
    return LifecycleMachine(clock=clock, random=random.Random(SEED).random), clock


def disturbance(machine: LifecycleMachine, ledger: ResourceLedger, rng: random.Random) -> ev.Event:
    state = machine.state
    viewers = list(machine.context.viewers)
    if state is State.STREAMING and rng.random() < 0.5:
        return ev.OfferReceived(f"viewer-{rng.randrange(3)}", "offer")
    if viewers and rng.random() < 0.5:
        viewer = rng.choice(viewers)
        viewer_events: list[ev.Event] = [
            ev.RemoteIceCandidate(
                viewer.session, ev.IceCandidate("candidate:1 1 udp 1 x 1 typ host")
            ),
            ev.PeerClosed(viewer.session, viewer.peer),
            ev.HangupReceived(viewer.session),
        ]
        return rng.choice(viewer_events)
    if (Timer.ACCESS_TOKEN_EXPIRY, None) in ledger.pending_timers and rng.random() < 0.2:
        return ev.AccessTokenExpiring(ledger.pending_timers[(Timer.ACCESS_TOKEN_EXPIRY, None)])
    failures: list[ev.Event] = [
        ev.SocketClosed(1006),
        ev.CameraFailed("x"),
        ev.TokensRefreshed(ev.TokenGrant("a", "r", 3600)),
    ]
    return rng.choice(failures)


Step = tuple[float, ev.Event]
"""Seconds the fake clock moves on, then the event (time matters to the
machine: offers are rate-limited, tokens expire, device codes expire)."""


def record_sequence(count: int) -> list[Step]:
    machine, clock = new_machine()
    ledger = ResourceLedger()
    rng = random.Random(SEED)
    sequence: list[Step] = []
    while len(sequence) < count:
        event = happy_event(machine, ledger) if rng.random() < 0.7 else None
        if event is None:
            event = disturbance(machine, ledger, rng)
        pause = rng.uniform(0.0, 0.5)
        clock.advance(pause)
        ledger.record(event, machine.handle(event))
        sequence.append((pause, event))
    return sequence


def replay(sequence: list[Step]) -> float:
    machine, clock = new_machine()
    handle, advance = machine.handle, clock.advance
    start = time.perf_counter()
    for pause, event in sequence:
        advance(pause)
        handle(event)
    elapsed = time.perf_counter() - start
    assert machine.counters.events == len(sequence)
    return len(sequence) / elapsed


def trivial_floor(count: int) -> float:
    class Model:
        pass

    model = Model()
    Machine(
        model=model,
        states=["a", "b", "c"],
        transitions=[["step", "a", "b"], ["step", "b", "c"], ["step", "c", "a"]],
        initial="a",
        auto_transitions=False,
    )
    trigger = model.step  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(count):
        trigger()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sequence = record_sequence(args.events)
    kinds = len({type(event) for _pause, event in sequence})
    ours = [replay(sequence) for _ in range(args.repeat)]
    floor = [trivial_floor(args.events) for _ in range(args.repeat)]
    ours_median, floor_median = statistics.median(ours), statistics.median(floor)
    print(f"{args.events} events of {kinds} kinds, median of {args.repeat} runs")
    print(f"{'machine':<42}{'events/s':>12}")
    print(f"{'transitions Machine, trivial 3-state graph':<42}{floor_median:>12,.0f}")
    print(f"{'intercom-fsm LifecycleMachine':<42}{ours_median:>12,.0f}")
    # An intercom sees tens of events a second; every row runs through the
    # library (the one dispatcher), which costs more than a trivial graph.
    verdict = "above" if ours_median >= TARGET_EVENTS_PER_SECOND else "BELOW"
    print(f"{verdict} the target of {TARGET_EVENTS_PER_SECOND:,} events/s")


if __name__ == "__main__":
    main()
