"""Tools to test the machine, and a product that embeds it, without I/O.

- :class:`FakeClock`: injected time that moves only when told.
- :class:`ResourceLedger`: replays effects and events and checks that every
  opened resource (socket, peer, camera, microphone, speaker, timer) is
  closed exactly once.
- :func:`happy_event`: what a working world would answer next, so that a test
  can walk from any state to Streaming.
- :class:`MachineDriver`: a machine, its fake clocks and its ledger, fed one
  event at a time, with questions about what the last step asked for.
"""

from __future__ import annotations

import attrs

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.effects import Effect, Timer, TimerKey
from intercom_fsm.machine.context import MachineSettings
from intercom_fsm.machine.guards import timer_key_of
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.machine.session import SessionState
from intercom_fsm.states import State


@attrs.define
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LedgerError(AssertionError):
    """A resource was closed twice, or closed without being open."""


@attrs.define
class ResourceLedger:
    sockets_open: int = 0
    camera_open: int = 0
    microphone_open: int = 0
    speaker_open: int = 0
    peers_open: set[int] = attrs.field(factory=set)
    pending_timers: dict[TimerKey, int] = attrs.field(factory=dict)
    delays: list[tuple[Timer, float]] = attrs.field(factory=list)
    last_effects: list[Effect] = attrs.field(factory=list)

    def record(self, event: ev.Event, effects: list[Effect]) -> None:
        """Account for one step: the event delivered, the effects returned."""
        key = timer_key(event)
        if key is not None and self.pending_timers.get(key) == getattr(event, "generation", None):
            del self.pending_timers[key]
        for effect in effects:
            self._apply(effect)
        self.last_effects = effects

    def _apply(self, effect: Effect) -> None:
        match effect:
            case fx.OpenSocket():
                if self.sockets_open:
                    raise LedgerError("socket opened while one is open")
                self.sockets_open += 1
            case fx.CloseSocket():
                if not self.sockets_open:
                    raise LedgerError("socket closed twice")
                self.sockets_open -= 1
            case fx.OpenCamera():
                if self.camera_open:
                    raise LedgerError("camera opened twice")
                self.camera_open += 1
            case fx.CloseCamera():
                if not self.camera_open:
                    raise LedgerError("camera closed twice")
                self.camera_open -= 1
            case fx.OpenMicrophone():
                if self.microphone_open:
                    raise LedgerError("microphone opened twice")
                self.microphone_open += 1
            case fx.CloseMicrophone():
                if not self.microphone_open:
                    raise LedgerError("microphone closed twice")
                self.microphone_open -= 1
            case fx.OpenSpeaker():
                if self.speaker_open:
                    raise LedgerError("speaker opened twice")
                self.speaker_open += 1
            case fx.CloseSpeaker():
                if not self.speaker_open:
                    raise LedgerError("speaker closed twice")
                self.speaker_open -= 1
            case fx.CreatePeer(peer=peer):
                if peer in self.peers_open:
                    raise LedgerError(f"peer {peer} created twice")
                self.peers_open.add(peer)
            case fx.ClosePeer(peer=peer):
                if peer not in self.peers_open:
                    raise LedgerError(f"peer {peer} closed twice or never opened")
                self.peers_open.remove(peer)
            case fx.ScheduleTimer():
                self.pending_timers[effect.key] = effect.generation
                self.delays.append((effect.timer, effect.delay))
            case fx.CancelTimer():
                if effect.key not in self.pending_timers:
                    raise LedgerError(f"timer {effect.key} cancelled but not pending")
                del self.pending_timers[effect.key]
            case _:
                pass

    @property
    def all_released(self) -> bool:
        return not (
            self.sockets_open
            or self.camera_open
            or self.microphone_open
            or self.speaker_open
            or self.peers_open
            or self.pending_timers
        )


def timer_key(event: ev.Event) -> TimerKey | None:
    if isinstance(event, ev.TIMER_EVENTS):
        return timer_key_of(event)
    return None


GRANT = ev.TokenGrant(access_token="access", refresh_token="refresh", expires_in=3600)
HAPPY_VIEWER = ev.DEFAULT_SESSION


def happy_event(machine: LifecycleMachine, ledger: ResourceLedger) -> ev.Event | None:
    """The next event of a world where everything works; None in Streaming
    and Stopped."""
    state = machine.state
    pending = ledger.pending_timers
    if state is State.IDLE:
        return ev.Started(tokens=None)
    if state is State.UNAUTHORIZED:
        return ev.DeviceCodeIssued(
            device_code="device", user_code="ABCD-EFGH", verification_uri="https://x/device",
            expires_in=600, interval=5,
        )  # fmt: skip
    if state is State.AWAITING_APPROVAL:
        if any(isinstance(e, fx.PollToken) for e in ledger.last_effects):
            return ev.TokensGranted(GRANT)
        if (Timer.POLL, None) in pending:
            return ev.PollDue(pending[(Timer.POLL, None)])
        return ev.TokensGranted(GRANT)
    if state is State.AUTHORIZED:
        return ev.TokensRefreshed(GRANT)
    if state is State.BACKOFF:
        return ev.BackoffElapsed(pending[(Timer.BACKOFF, None)])
    if state is State.CONNECTING:
        return ev.SocketOpened()
    if state is State.NEGOTIATING:
        for viewer in machine.context.viewers:
            if viewer.state == SessionState.OFFERED:
                return ev.AnswerReady(viewer.session, viewer.peer, "answer")
            if viewer.state == SessionState.ANSWERED:
                return ev.PeerConnected(viewer.session, viewer.peer)
        return ev.OfferReceived(HAPPY_VIEWER, "offer")
    return None


class MachineDriver:
    """A machine on fake clocks (wall ``clock`` and ``monotonic`` move apart
    only when told), the ledger of what it opened, and the last step's effects.
    ``jitter`` is every backoff draw (0.5 by default: half the ceiling)."""

    def __init__(
        self,
        settings: MachineSettings | None = None,
        *,
        jitter: float = 0.5,
        now: float = 1_700_000_000.0,
    ) -> None:
        self.clock = FakeClock(now)
        self.monotonic = FakeClock(1_000.0)
        self.machine = LifecycleMachine(
            clock=self.clock, monotonic=self.monotonic, random=lambda: jitter, settings=settings
        )
        self.ledger = ResourceLedger()
        self.effects: list[Effect] = []

    def advance(self, seconds: float) -> None:
        """Time passes on both clocks."""
        self.clock.advance(seconds)
        self.monotonic.advance(seconds)

    def send(self, event: ev.Event) -> list[Effect]:
        self.effects = self.machine.handle(event)
        self.ledger.record(event, self.effects)
        return self.effects

    def walk_to(self, target: State) -> MachineDriver:
        """Follow the happy path until the machine is in ``target``."""
        for _ in range(15):
            if self.machine.state is target:
                return self
            event = happy_event(self.machine, self.ledger)
            if event is None:
                break
            self.send(event)
        raise AssertionError(f"{target} not reached: {self.machine.state}")

    def timer(self, timer: Timer) -> int:
        """The generation of the pending timer (of the lifecycle, not a peer's)."""
        return self.ledger.pending_timers[(timer, None)]

    def kinds(self) -> list[type]:
        return [type(effect) for effect in self.effects]

    def delay_of(self, timer: Timer) -> float:
        """The delay the last step set ``timer`` to."""
        [delay] = [
            e.delay for e in self.effects if isinstance(e, fx.ScheduleTimer) and e.timer is timer
        ]
        return delay

    def problems(self) -> list[str]:
        return [e.message for e in self.effects if isinstance(e, fx.ReportProblem)]
