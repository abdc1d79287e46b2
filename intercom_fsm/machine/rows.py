"""Transition rows, and the ``transitions`` machine that runs them.

A row says: in these source states, this event (or none: an *eventless*
transition, XState's ``always``) moves the model to ``dest`` (``None`` keeps
it where it is: an internal transition, no exit or entry) when the guard
holds, doing these actions, for this reason. Rows are data; the ``transitions``
library is the one dispatcher: every row becomes one of its transitions, the
guard its condition, the actions its ``before`` callbacks (they run before the
state changes, so the entry of the new state sees what they recorded). The
library tries a trigger's transitions in table order and takes the first
whose condition holds.

:class:`RowMachine` keeps the row on each library transition, so that what
ran can be told by the row that ran (:class:`RowTaken`), and the diagrams
(``intercom_fsm.diagram``) are drawn from the machine's own transitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import attrs
from transitions import Machine, Transition
from transitions import State as LibraryState

Target = TypeVar("Target")

ALWAYS = "always"
"""The trigger name of eventless rows, tried after every step until none applies."""


@attrs.frozen
class Guard(Generic[Target]):
    """A named condition of the target and the event; the name is what the
    diagrams show. Guards only read: the library may ask one more than once."""

    label: str
    test: Callable[[Target, Any], bool]

    def negated(self) -> Guard[Target]:
        test = self.test
        return Guard(f"not {self.label}", lambda target, event: not test(target, event))


Action = Callable[[Target, Any], None]


@attrs.frozen(eq=False)
class Row(Generic[Target]):
    sources: tuple[str, ...]
    trigger: str
    dest: str | None
    reason: str
    guard: Guard[Target] | None = None
    actions: tuple[Action[Target], ...] = ()

    def describe_actions(self) -> str:
        return ", ".join(getattr(action, "__name__", repr(action)) for action in self.actions)


def trigger_name(event: type | None) -> str:
    """The trigger of an event class: its name. ``None`` is the eventless trigger."""
    return ALWAYS if event is None else event.__name__


@attrs.frozen
class RowTaken(Generic[Target]):
    """One row the library took: for transition records and for tests that
    check the library took the row the table lists."""

    machine: str
    source: str
    row: Row[Target]
    subject: Target
    event: Any

    @property
    def dest(self) -> str:
        return self.row.dest or self.source


RowListener = Callable[[RowTaken[Any]], None]


class RowTransition(Transition):
    """A library transition that remembers the row it was made from."""

    def __init__(self, *args: Any, row: Row[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row = row


class RowMachine(Machine):
    """A synchronous ``transitions`` machine built from rows.

    ``subject`` picks what guards and actions work on from the library's model;
    ``taken`` hears of every row taken, before its actions run.
    """

    transition_cls = RowTransition

    def __init__(
        self,
        *,
        name: str,
        states: Sequence[LibraryState],
        rows: Sequence[Row[Any]],
        initial: str,
        subject: Callable[[Any], Any],
        taken: RowListener,
        model: Any = None,
    ) -> None:
        self.rows = tuple(rows)
        self._subject = subject
        self._taken = taken
        super().__init__(
            model=model if model is not None else [],
            states=list(states),
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            send_event=True,
            name=name,
        )
        for row in self.rows:
            self._add_row(row)

    def fire(self, model: Any, trigger: str, event: Any) -> bool:
        """Deliver ``event`` to ``model`` under ``trigger``; False when no row
        of the model's state took it."""
        library_event = self.events.get(trigger)
        if library_event is None or getattr(model, "state") not in library_event.transitions:  # noqa: B009
            return False
        return bool(library_event.trigger(model, event=event))

    def library_transitions(self) -> Iterator[tuple[str, RowTransition]]:
        """Every (trigger, transition) of the library, in table order per source."""
        for trigger, library_event in self.events.items():
            for transitions in library_event.transitions.values():
                for transition in transitions:
                    assert isinstance(transition, RowTransition)
                    yield trigger, transition

    def _add_row(self, row: Row[Any]) -> None:
        machine_name = self.name.rstrip(": ")
        subject = self._subject
        taken = self._taken

        def run_actions(event_data: Any) -> None:
            target = subject(event_data.model)
            event = event_data.kwargs.get("event")
            taken(RowTaken(machine_name, event_data.state.name, row, target, event))
            for action in row.actions:
                action(target, event)

        conditions: list[str | Callable[..., bool | None]] = []
        if row.guard is not None:
            test = row.guard.test

            def holds(event_data: Any) -> bool:
                return test(subject(event_data.model), event_data.kwargs.get("event"))

            conditions.append(holds)
        self.add_transition(
            row.trigger,
            list(row.sources),
            row.dest,
            conditions=conditions or None,
            before=[run_actions],
            row=row,
        )


def first_matching_row(
    rows: Iterable[Row[Target]], state: str, trigger: str, subject: Target, event: object
) -> Row[Target] | None:
    """The row the table lists for this state, trigger and guard outcome (the
    first whose guard holds). Tests compare it with what the library took."""
    for row in rows:
        matches = state in row.sources and row.trigger == trigger
        if matches and (row.guard is None or row.guard.test(subject, event)):
            return row
    return None
