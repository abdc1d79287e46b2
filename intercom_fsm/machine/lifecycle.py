"""The lifecycle machine: the product's heart, with no I/O.

Theory of operation
-------------------
There are two machines, both ``transitions`` machines built from tables of
rows, and the library is their one dispatcher. The *lifecycle* machine (this
module, table in ``table.py``, states in ``intercom_fsm.states``) has one
model: the context. The *session* machine (``session.py``, registry in
``viewers.py``) has one model per viewer session. The diagrams in
``diagrams/`` are drawn from both machines' own transitions.

``handle(event)`` is the only way in, and the list of effects it returns is the
only way out. One step goes:

1. The event's class names the trigger; the library takes the first row of
   the current state whose guard holds, runs its actions, and changes state
   (exit, entry) when the row has a destination. No row: counted as ignored.
2. A row whose event belongs to a viewer session hands it to the session
   machine (``deliver_to_session``); the lifecycle follows the sessions
   through eventless rows (Negotiating becomes Streaming when one streams).
3. Eventless rows (``always``) are tried until none applies.
4. The effects emitted along the way are returned, in order.

The two machines are like two regions of one statechart: the lifecycle is
about the grant and the socket, the sessions about the calls. A call whose
media flows does not need the socket (protocol.md 3.3): when the socket
drops, its session is Held while the lifecycle backs off and reconnects.

Time and randomness are injected (``clock``, ``monotonic``, ``random``), so
the machine runs the same under the daemon, inside another product, and under
hypothesis with a fake clock.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from transitions import State as LibraryState

from intercom_fsm.effects import Effect
from intercom_fsm.events import Event, SessionId
from intercom_fsm.machine.backoff import Backoff
from intercom_fsm.machine.context import Clock, Context, Counters, MachineSettings, Random
from intercom_fsm.machine.rows import ALWAYS, RowListener, RowMachine, RowTaken, trigger_name
from intercom_fsm.machine.session import SessionState
from intercom_fsm.machine.table import LIFECYCLE_TABLE
from intercom_fsm.machine.viewers import SESSION_MACHINE, Viewers
from intercom_fsm.states import STATE_SPECS, State, StateSpec

LIFECYCLE_MACHINE = "lifecycle"
_MAX_EVENTLESS_STEPS = 8


@attrs.frozen
class TransitionRecord:
    """One row taken, for logs and observers. ``session`` is set for a
    viewer's session machine, None for the lifecycle. ``event`` names the
    event of the step, also for an eventless row it led to (Negotiating →
    Streaming "on PeerConnected": a viewer receives media)."""

    source: str
    dest: str
    event: str
    reason: str
    session: SessionId | None = None

    @property
    def changed_state(self) -> bool:
        return self.source != self.dest


TransitionListener = Callable[[TransitionRecord], None]


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
        monotonic: Clock | None = None,
    ) -> None:
        """``monotonic`` defaults to ``time.monotonic`` with the real clock,
        and to ``clock`` itself when a clock of one's own (a fake) is given."""
        settings = settings or MachineSettings()
        if monotonic is None:
            monotonic = time.monotonic if clock is time.time else clock
        self._ctx = Context(
            settings=settings,
            clock=clock,
            monotonic=monotonic,
            random=random,
            backoff=Backoff(settings.backoff),
        )
        self._listeners: list[TransitionListener] = []
        self._row_listeners: list[RowListener] = []
        self._records: list[TransitionRecord] = []
        self._step_event = ALWAYS
        self._ctx.viewers = Viewers(self._ctx, self._taken)
        self._machine = RowMachine(
            name=LIFECYCLE_MACHINE,
            states=[_library_state(STATE_SPECS[state]) for state in State],
            rows=LIFECYCLE_TABLE,
            initial=State.IDLE.value,
            subject=lambda model: model,
            taken=self._taken,
            model=self._ctx,
        )

    # --- the interface --------------------------------------------------------------

    @property
    def state(self) -> State:
        return State(self._ctx.state)

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

    @property
    def held_sessions(self) -> int:
        """Calls whose media flows while the socket is gone."""
        return self._ctx.viewers.count(SessionState.HELD)

    @property
    def machines(self) -> Mapping[str, RowMachine]:
        """The ``transitions`` machines that dispatch, by name: what the
        diagrams draw."""
        return {LIFECYCLE_MACHINE: self._machine, SESSION_MACHINE: self._ctx.viewers.machine}

    def add_listener(self, listener: TransitionListener) -> None:
        """Called with every row taken, lifecycle and sessions, after the step."""
        self._listeners.append(listener)

    def add_row_listener(self, listener: RowListener) -> None:
        """Called at the moment a row is taken, before its actions run (tests
        use it to check the library took the row the table lists)."""
        self._row_listeners.append(listener)

    def handle(self, event: Event) -> list[Effect]:
        """Take one event, return the effects to carry out, in order."""
        ctx = self._ctx
        ctx.counters.events += 1
        trigger = self._step_event = trigger_name(type(event))
        if not self._machine.fire(ctx, trigger, event):
            ctx.counters.ignored[f"{ctx.state}:{trigger}"] += 1
        for _ in range(_MAX_EVENTLESS_STEPS):
            if not self._machine.fire(ctx, ALWAYS, None):
                break
        self._publish()
        return ctx.take_effects()

    # --- internals ---------------------------------------------------------------------

    def _taken(self, taken: RowTaken[Any]) -> None:
        session = taken.subject.session if taken.machine == SESSION_MACHINE else None
        row = taken.row
        event = self._step_event if row.trigger == ALWAYS else row.trigger
        self._records.append(TransitionRecord(taken.source, taken.dest, event, row.reason, session))
        for listener in self._row_listeners:
            listener(taken)

    def _publish(self) -> None:
        if not self._records:
            return
        records, self._records = self._records, []
        for record in records:
            for listener in self._listeners:
                listener(record)


def _library_state(spec: StateSpec) -> LibraryState:
    on_enter, on_exit = spec.on_enter, spec.on_exit

    def enter(event_data: Any) -> None:
        assert on_enter is not None
        on_enter(event_data.model)

    def leave(event_data: Any) -> None:
        assert on_exit is not None
        on_exit(event_data.model)

    return LibraryState(
        spec.state.value,
        on_enter=[enter] if on_enter else None,
        on_exit=[leave] if on_exit else None,
        final=spec.final,
    )


__all__ = ["LifecycleMachine", "SessionState", "TransitionRecord"]
