"""Property-based tests of the lifecycle machine over arbitrary event sequences.

1. no sequence raises or leaves the machine in an undefined state;
2. liveness: from every reachable state the happy path reaches Streaming;
3. shutdown from any state ends in Stopped with everything closed exactly once;
4. backoff delays stay in [0, cap]; the attempt count resets after success;
5. tokens are discarded only on refresh rejection or logout;
6. Streaming implies a grant, an open socket and a connected session;
7. the library takes, for every event, the row the table lists for that
   state, event and guard outcome, in both machines;
8. calls outlive the socket: a held call has no socket, a grace timer, and
   its camera; the camera and audio are open exactly while online or held.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.machine.backoff import BackoffPolicy
from intercom_fsm.machine.context import MachineSettings
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.machine.rows import RowTaken, first_matching_row
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State
from intercom_fsm.testing import FakeClock, ResourceLedger, happy_event
from tests.property.strategies import NOW, any_event

POLICY = BackoffPolicy(base=0.5, cap=30.0, stable_after=20.0)
HAPPY_PATH_BOUND = 12


def new_machine(seed: int = 0) -> tuple[LifecycleMachine, FakeClock, ResourceLedger]:
    clock = FakeClock(NOW)
    rng = random.Random(seed)
    settings = MachineSettings(backoff=POLICY, max_viewers=2, microphone=True, speaker=True)
    machine = LifecycleMachine(clock=clock, random=rng.random, settings=settings)
    return machine, clock, ResourceLedger()


class RowChecker:
    """Property 7: each row the library takes is the first row of its table
    whose source, trigger and guard match at that moment; an event that the
    table does not take is not taken."""

    def __init__(self, machine: LifecycleMachine) -> None:
        self.machine = machine
        self.taken: list[RowTaken[object]] = []
        machine.add_row_listener(self.check)

    def check(self, taken: RowTaken[object]) -> None:
        rows = self.machine.machines[taken.machine].rows
        expected = first_matching_row(
            rows, taken.source, taken.row.trigger, taken.subject, taken.event
        )
        assert expected is taken.row, (taken.machine, taken.source, taken.row.reason)
        self.taken.append(taken)

    def deliver(self, event: ev.Event) -> list[fx.Effect]:
        machine = self.machine
        trigger = type(event).__name__
        expected = first_matching_row(
            machine.machines["lifecycle"].rows,
            machine.state.value,
            trigger,
            machine.context,
            event,
        )
        self.taken.clear()
        effects = machine.handle(event)
        first = next((t for t in self.taken if t.machine == "lifecycle"), None)
        if expected is None:
            assert first is None or first.row.trigger == "always", first
        else:
            assert first is not None and first.row is expected
        return effects


class LifecycleUnderArbitraryEvents(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.machine, self.clock, self.ledger = new_machine()
        self.rows = RowChecker(self.machine)

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        event = data.draw(any_event(self.machine, self.ledger), label="event")
        had_tokens = self.machine.context.tokens is not None
        effects = self.rows.deliver(event)
        self.ledger.record(event, effects)
        discarded = any(isinstance(e, fx.DiscardTokens) for e in effects)
        lost = had_tokens and self.machine.context.tokens is None
        if discarded or lost:
            # Property 5: only a rejected refresh or a logout forgets the grant.
            assert isinstance(event, ev.RefreshRejected | ev.LogoutRequested), event

    @rule(seconds=st.floats(min_value=0, max_value=4000))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.machine.state is not State.STOPPED)
    @rule()
    def follow_happy_path(self) -> None:
        event = happy_event(self.machine, self.ledger)
        if event is not None:
            self.ledger.record(event, self.rows.deliver(event))

    @precondition(lambda self: self.machine.state is not State.STOPPED)
    @rule()
    def walk_happy_path_to_streaming(self) -> None:
        for _ in range(HAPPY_PATH_BOUND):
            event = happy_event(self.machine, self.ledger)
            if event is None:
                return
            self.ledger.record(event, self.rows.deliver(event))

    @invariant()
    def state_is_defined(self) -> None:
        assert self.machine.state in State

    @invariant()
    def resources_match_the_machine(self) -> None:
        ctx = self.machine.context
        state = self.machine.state
        assert self.ledger.sockets_open == int(ctx.socket_open)
        assert self.ledger.camera_open == int(ctx.camera_open)
        assert self.ledger.microphone_open == int(ctx.microphone_open)
        assert self.ledger.speaker_open == int(ctx.speaker_open)
        assert self.ledger.peers_open == {viewer.peer for viewer in ctx.viewers}
        assert self.ledger.pending_timers == ctx.pending_timers
        if state not in (State.CONNECTING, State.NEGOTIATING, State.STREAMING):
            assert not ctx.socket_open
        if state not in (State.IDLE, State.STOPPED):
            # Property 8: media open exactly while online or a call holds it.
            media = state in (State.NEGOTIATING, State.STREAMING) or len(ctx.viewers) > 0
            assert ctx.camera_open is media
            assert ctx.microphone_open is media and ctx.speaker_open is media

    @invariant()
    def held_calls_have_no_socket_and_a_grace_timer(self) -> None:
        ctx = self.machine.context
        states = [viewer.state for viewer in ctx.viewers]
        held = states.count(SessionState.HELD)
        if held:
            assert not ctx.socket_open or self.machine.state is State.CONNECTING
            assert (Timer.ORPHAN_GRACE, None) in ctx.pending_timers
        if self.machine.state in (State.NEGOTIATING, State.STREAMING):
            assert held == 0
        else:
            # Offline, only calls whose media flows remain.
            assert set(states) <= {SessionState.HELD.value}

    @invariant()
    def streaming_means_connected(self) -> None:
        ctx = self.machine.context
        streaming = ctx.viewers.streaming_count() > 0
        if self.machine.state is State.STREAMING:
            assert ctx.tokens is not None and ctx.socket_open and streaming
        if self.machine.state is State.NEGOTIATING:
            assert not streaming

    @invariant()
    def backoff_delays_are_bounded(self) -> None:
        # Only a rejected client waits longer than the cap: its fixed pause.
        pause = self.machine.context.settings.client_rejected_pause
        for timer, delay in self.ledger.delays:
            if timer is Timer.BACKOFF:
                assert 0 <= delay <= POLICY.cap or delay == pause

    def teardown(self) -> None:
        # Property 3: shutdown from wherever the run ended.
        effects = self.rows.deliver(ev.ShutdownRequested())
        self.ledger.record(ev.ShutdownRequested(), effects)
        assert self.machine.state is State.STOPPED
        assert self.ledger.all_released, self.ledger
        assert self.machine.handle(ev.SocketOpened()) == []


LifecycleUnderArbitraryEvents.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
TestLifecycleUnderArbitraryEvents = LifecycleUnderArbitraryEvents.TestCase


@settings(max_examples=300, deadline=None)
@given(data=st.data(), steps=st.integers(min_value=0, max_value=40))
def test_happy_path_reaches_streaming_from_any_reachable_state(
    data: st.DataObject, steps: int
) -> None:
    machine, clock, ledger = new_machine()
    for _ in range(steps):
        event = data.draw(any_event(machine, ledger))
        if isinstance(event, ev.ShutdownRequested):
            continue
        ledger.record(event, machine.handle(event))
        clock.advance(data.draw(st.floats(min_value=0, max_value=100)))
    for _ in range(HAPPY_PATH_BOUND):
        happy = happy_event(machine, ledger)
        if happy is None:
            break
        ledger.record(happy, machine.handle(happy))
    assert machine.state is State.STREAMING
    assert any(state == SessionState.CONNECTED for state in machine.sessions.values())


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    failures=st.integers(min_value=1, max_value=80),
)
def test_backoff_grows_within_cap_and_resets_after_a_stable_success(
    seed: int, failures: int
) -> None:
    machine, clock, ledger = new_machine(seed)
    for event in (ev.Started(tokens=None),):
        ledger.record(event, machine.handle(event))
    for _ in range(failures):
        failure = ev.AuthTransientError(ev.AuthOperation.DEVICE_AUTHORIZATION, "down")
        ledger.record(failure, machine.handle(failure))
        assert machine.state is State.BACKOFF
        delay = machine.context.backoff.last_delay
        assert delay is not None and 0 <= delay <= POLICY.cap
        elapsed = ev.BackoffElapsed(ledger.pending_timers[(Timer.BACKOFF, None)])
        ledger.record(elapsed, machine.handle(elapsed))
    assert machine.context.backoff.attempt == failures
    issued = ev.DeviceCodeIssued("dc", "CODE", "https://x", expires_in=600, interval=5)
    ledger.record(issued, machine.handle(issued))
    clock.advance(POLICY.stable_after)
    failed = ev.AuthTransientError(ev.AuthOperation.POLL, "down")
    ledger.record(failed, machine.handle(failed))
    assert machine.context.backoff.attempt == 1
    assert machine.context.backoff.last_delay is not None
    assert machine.context.backoff.last_delay <= POLICY.base
