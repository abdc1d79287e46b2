"""The lifecycle machine: the product's heart, with no I/O.

Theory of operation
-------------------
There are two kinds of machine. The *lifecycle* machine (this module) has one
instance per device and the states of ``intercom_fsm.states``. Each viewer has
a small *session* machine (``intercom_fsm.machine.session``). Both are
``transitions`` machines built from tables of rows (``table.py``,
``session.py``), and the diagrams in ``diagrams/`` are drawn from the same rows.

``handle(event)`` is the only way in, and the list of effects it returns is the
only way out. One step goes:

1. A timer event whose generation is not the pending one is stale: counted and
   dropped (the runtime may deliver a timer that was cancelled in the meantime).
2. In Negotiating and Streaming, a session event goes to its viewer's machine.
3. The lifecycle table is consulted for the current state and the event's
   class; the first row whose guard holds is taken. No row: the event is
   counted as ignored.
4. Eventless rows (``always``) are tried until none applies.
5. The effects emitted along the way are returned, in order.

Leaving the online group (Connecting, Negotiating, Streaming) for any other
state closes every viewer's peer, the camera and the socket, whatever the
reason: like the exit action of a statechart's parent state.

Time and randomness are injected (``clock``, ``random``), so the machine runs
the same under the daemon, inside another product, and under hypothesis with
a fake clock.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from transitions import Machine
from transitions import State as LibraryState

from intercom_fsm.effects import Effect, Timer
from intercom_fsm.events import (
    SESSION_EVENT_TYPES,
    AccessTokenExpiring,
    AuthOperation,
    AuthTransientError,
    BackoffElapsed,
    Event,
    PollDue,
    RefreshRejected,
    SessionId,
    SessionSetupExpired,
    TokensRefreshed,
)
from intercom_fsm.machine.backoff import Backoff
from intercom_fsm.machine.context import Clock, Context, Counters, MachineSettings, Random
from intercom_fsm.machine.rows import ALWAYS, Row, index_rows, select_row, to_transitions
from intercom_fsm.machine.session import SessionState, Viewers, ViewerSession
from intercom_fsm.machine.table import LIFECYCLE_TABLE
from intercom_fsm.states import ONLINE_STATES, SESSION_STATES, STATE_SPECS, State, StateSpec

_MAX_EVENTLESS_STEPS = 8


@attrs.frozen
class TransitionRecord:
    """One transition taken, for logs and observers. ``session`` is set for a
    viewer's session machine, None for the lifecycle."""

    source: str
    dest: str
    event: str
    reason: str
    session: SessionId | None = None

    @property
    def changed_state(self) -> bool:
        return self.source != self.dest


TransitionListener = Callable[[TransitionRecord], None]


class _Model:
    """The object the ``transitions`` library drives; it carries our context."""

    state: str

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx


class LifecycleMachine:
    """Feed it events, carry out the effects it returns.

    >>> machine = LifecycleMachine(clock=lambda: 0.0, random=lambda: 0.5)
    >>> machine.handle(Started(tokens=None))
    [RequestDeviceCode()]
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        random: Random = random_module.random,
        settings: MachineSettings | None = None,
    ) -> None:
        settings = settings or MachineSettings()
        self._ctx = Context(
            settings=settings,
            clock=clock,
            random=random,
            backoff=Backoff(settings.backoff),
        )
        self._listeners: list[TransitionListener] = []
        self._records: list[TransitionRecord] = []
        self._ctx.viewers = Viewers(self._ctx, self._session_fired)
        self._model = _Model(self._ctx)
        self._machine = Machine(
            model=self._model,
            states=[self._library_state(spec) for spec in _specs()],
            transitions=to_transitions(LIFECYCLE_TABLE, _as_context, self._fired),
            initial=State.IDLE.value,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            send_event=True,
        )
        self._rows = index_rows(LIFECYCLE_TABLE)
        self._events = self._machine.events

    # --- the interface --------------------------------------------------------------

    @property
    def state(self) -> State:
        return State(self._model.state)

    @property
    def finished(self) -> bool:
        return self.state is State.STOPPED

    @property
    def counters(self) -> Counters:
        return self._ctx.counters

    @property
    def context(self) -> Context:
        """Read-only by convention: what the machine remembers."""
        return self._ctx

    @property
    def sessions(self) -> Mapping[SessionId, str]:
        """Each live viewer session and its state."""
        return {viewer.session: viewer.state for viewer in self._ctx.viewers}

    def add_listener(self, listener: TransitionListener) -> None:
        """Called with every transition taken, lifecycle and sessions."""
        self._listeners.append(listener)

    def handle(self, event: Event) -> list[Effect]:
        """Take one event, return the effects to carry out, in order."""
        ctx = self._ctx
        ctx.counters.events += 1
        name = type(event).__name__
        if not self._consume_timer(event):
            ctx.counters.stale_timers += 1
            return []
        _note_refresh_outcome(ctx, event)
        routed: bool | None = None
        if isinstance(event, SESSION_EVENT_TYPES) and self.state in SESSION_STATES:
            routed = ctx.viewers.route(event)
        source = self._model.state
        taken = self._take(source, name, event)
        if not taken or routed is False:
            ctx.counters.ignored[f"{source}:{name}"] += 1
        self._follow_eventless_rows()
        self._publish()
        return ctx.take_effects()

    # --- internals ---------------------------------------------------------------------

    def _consume_timer(self, event: Event) -> bool:
        ctx = self._ctx
        if isinstance(event, PollDue):
            return ctx.consume_timer(Timer.POLL, event.generation)
        if isinstance(event, BackoffElapsed):
            return ctx.consume_timer(Timer.BACKOFF, event.generation)
        if isinstance(event, AccessTokenExpiring):
            return ctx.consume_timer(Timer.ACCESS_TOKEN_EXPIRY, event.generation)
        if isinstance(event, SessionSetupExpired):
            return ctx.consume_timer(Timer.SESSION_SETUP, event.generation, event.peer)
        return True

    def _take(self, source: str, name: str, event: Event | None) -> bool:
        row = select_row(self._rows, source, name, self._ctx, event)
        if row is None:
            return False
        if row.dest is None:
            self._records.append(TransitionRecord(source, source, name, row.reason))
            for action in row.actions:
                action(self._ctx, event)
            return True
        return bool(self._events[name].trigger(self._model, event=event))

    def _follow_eventless_rows(self) -> None:
        for _ in range(_MAX_EVENTLESS_STEPS):
            if not self._take(self._model.state, ALWAYS, None):
                return

    def _library_state(self, spec: StateSpec) -> LibraryState:
        on_enter, on_exit = spec.on_enter, spec.on_exit
        leaves_group = spec.state in ONLINE_STATES

        def enter(event_data: Any) -> None:
            assert on_enter is not None
            on_enter(self._ctx)

        def leave(event_data: Any) -> None:
            if leaves_group:
                self._leave_online_group(event_data)
            if on_exit is not None:
                on_exit(self._ctx)

        return LibraryState(
            spec.state.value,
            on_enter=[enter] if on_enter else None,
            on_exit=[leave] if on_exit or leaves_group else None,
            final=spec.final,
        )

    def _leave_online_group(self, event_data: Any) -> None:
        # The exit of the group's parent state, in statechart terms.
        dest = event_data.transition.dest
        if State(dest) in ONLINE_STATES:
            return
        ctx = self._ctx
        reason = f"leaving {event_data.transition.source} for {dest}"
        ctx.viewers.release_all(reason)
        ctx.online_since = None
        ctx.close_camera()
        ctx.close_socket(reason)

    def _fired(self, event_data: Any, row: Row[Context]) -> None:
        source = event_data.transition.source
        self._records.append(
            TransitionRecord(
                source=source,
                dest=event_data.transition.dest or source,
                event=event_data.event.name,
                reason=row.reason,
            )
        )

    def _session_fired(self, viewer: ViewerSession, trigger: str, row: Row[ViewerSession]) -> None:
        dest = row.dest or viewer.state
        self._records.append(
            TransitionRecord(viewer.state, dest, trigger, row.reason, viewer.session)
        )

    def _publish(self) -> None:
        if not self._records:
            return
        records, self._records = self._records, []
        for record in records:
            for listener in self._listeners:
                listener(record)


def _note_refresh_outcome(ctx: Context, event: Event) -> None:
    """Whatever state the answer lands in, a refresh is no longer under way."""
    if isinstance(event, TokensRefreshed | RefreshRejected) or (
        isinstance(event, AuthTransientError) and event.operation is AuthOperation.REFRESH
    ):
        ctx.refresh_in_flight = False


def _specs() -> list[StateSpec]:
    return [STATE_SPECS[state] for state in State]


def _as_context(model: Any) -> Context:
    assert isinstance(model, _Model)
    return model.ctx


__all__ = ["LifecycleMachine", "SessionState", "TransitionRecord"]
