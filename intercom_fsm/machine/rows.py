"""Transition rows: the data both machines are built from, and drawn from.

A row says: in these source states, this event (or none: an *eventless*
transition, XState's ``always``) moves the model to ``dest`` (``None`` keeps
it where it is, without exit or entry) when the guard holds, doing these
actions, for this reason. Rows are tried in table order; the first whose guard
holds wins. ``to_transitions`` turns rows into the ``transitions`` library's
configuration; ``intercom_fsm.diagram`` draws the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import attrs

Target = TypeVar("Target")

ALWAYS = "always"
"""The trigger name of eventless transitions, tried after every step."""


@attrs.frozen
class Guard(Generic[Target]):
    """A named condition; the name is what the diagrams show."""

    label: str
    test: Callable[[Target, Any], bool]


Action = Callable[[Target, Any], None]


@attrs.frozen
class Row(Generic[Target]):
    sources: tuple[str, ...]
    trigger: str
    dest: str | None
    reason: str
    guard: Guard[Target] | None = None
    actions: tuple[Action[Target], ...] = ()


def trigger_name(event: type | None) -> str:
    return ALWAYS if event is None else event.__name__


def to_transitions(
    rows: Sequence[Row[Target]],
    target: Callable[[Any], Target],
    fired: Callable[[Any, Row[Target]], None],
) -> list[dict[str, Any]]:
    """The ``transitions`` configuration for ``rows``. Callbacks receive the
    library's EventData (``send_event=True``); ``target`` picks the object the
    guards and actions work on from the library's model."""
    return [_transition(row, target, fired) for row in rows]


def _transition(
    row: Row[Target],
    target: Callable[[Any], Target],
    fired: Callable[[Any, Row[Target]], None],
) -> dict[str, Any]:
    # Actions run before the state changes, so that the entry of the new
    # state sees what they recorded (an adopted grant, a resume target). One
    # callback per row: the library's cost grows with each one.
    def run_actions(event_data: Any) -> None:
        fired(event_data, row)
        subject = target(event_data.model)
        event = event_data.kwargs.get("event")
        for action in row.actions:
            action(subject, event)

    config: dict[str, Any] = {
        "trigger": row.trigger,
        "source": list(row.sources),
        "dest": row.dest,
        "before": [run_actions],
    }
    if row.guard is not None:
        guard = row.guard

        def holds(event_data: Any) -> bool:
            return guard.test(target(event_data.model), event_data.kwargs.get("event"))

        config["conditions"] = [holds]
    return config


def labelled(rows: Iterable[Row[Target]]) -> list[dict[str, Any]]:
    """The rows that change state, with guards as plain labels, for drawing.
    Internal rows (bookkeeping that keeps the state) are left out of pictures;
    the table lists them."""
    return [
        {
            "trigger": row.trigger,
            "source": list(row.sources),
            "dest": row.dest,
            **({"conditions": [row.guard.label]} if row.guard else {}),
        }
        for row in rows
        if row.dest is not None
    ]


RowIndex = dict[tuple[str, str], tuple[Row[Target], ...]]


def index_rows(rows: Iterable[Row[Target]]) -> RowIndex[Target]:
    """The rows for each (state, trigger), in table order."""
    index: dict[tuple[str, str], list[Row[Target]]] = {}
    for row in rows:
        for source in row.sources:
            index.setdefault((source, row.trigger), []).append(row)
    return {key: tuple(rows) for key, rows in index.items()}


def select_row(
    index: RowIndex[Target], state: str, trigger: str, subject: Target, event: object
) -> Row[Target] | None:
    """The row the library would take: the first whose guard holds.

    The machines take internal rows themselves (run the actions, stay: no exit
    or entry) and hand state changes to the library. For the frequent events,
    ICE candidates, answers, offers while streaming, the library's dispatch
    costs more than the work itself. Guards are pure, so asking twice is safe.
    """
    for row in index.get((state, trigger), ()):
        if row.guard is None or row.guard.test(subject, event):
            return row
    return None
