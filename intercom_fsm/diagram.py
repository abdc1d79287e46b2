"""Diagrams drawn from the machines' own tables.

``intercom-fsm diagram`` writes ``diagrams/lifecycle.mmd`` and
``diagrams/session.mmd`` (mermaid, rendered by the forge) always, and SVG files
next to them when Graphviz (the ``dot`` program and the ``graphviz`` package)
is present. The mermaid files are committed, and a test fails when they differ
from what the tables give now.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from intercom_fsm.machine.rows import Row, labelled
from intercom_fsm.machine.session import SESSION_TABLE, SessionState
from intercom_fsm.machine.table import LIFECYCLE_TABLE
from intercom_fsm.states import State


@attrs.frozen
class DiagramSource:
    name: str
    title: str
    states: tuple[str, ...]
    initial: str
    rows: tuple[Row[Any], ...]


LIFECYCLE = DiagramSource(
    name="lifecycle",
    title="intercom-fsm lifecycle",
    states=tuple(state.value for state in State),
    initial=State.IDLE.value,
    rows=LIFECYCLE_TABLE,
)
SESSION = DiagramSource(
    name="session",
    title="intercom-fsm viewer session",
    states=tuple(state.value for state in SessionState),
    initial=SessionState.OFFERED.value,
    rows=SESSION_TABLE,
)
DIAGRAMS = (LIFECYCLE, SESSION)


class _Model:
    pass


def _graph_machine(
    source: DiagramSource, engine: Literal["graphviz", "mermaid"], current: str | None
) -> Any:
    from transitions.extensions import GraphMachine

    model = _Model()
    GraphMachine(
        model=model,
        states=list(source.states),
        transitions=labelled(source.rows),
        initial=current or source.initial,
        auto_transitions=False,
        show_conditions=True,
        title=source.title,
        graph_engine=engine,
    )
    return model.get_graph()  # type: ignore[attr-defined]


def mermaid(source: DiagramSource, current: str | None = None) -> str:
    """The mermaid text; ``current`` highlights a state (default: the initial one)."""
    text: str = _graph_machine(source, "mermaid", current).draw(None)
    return text.rstrip() + "\n"


def graphviz_available() -> bool:
    if shutil.which("dot") is None:
        return False
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return True


def write_diagrams(
    directory: Path, sources: Sequence[DiagramSource] = DIAGRAMS, current: str | None = None
) -> list[Path]:
    """Write every diagram; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source in sources:
        state = current if current in source.states else None
        suffix = f"-{state}" if state else ""
        path = directory / f"{source.name}{suffix}.mmd"
        path.write_text(mermaid(source, state))
        written.append(path)
        if graphviz_available():
            svg_path = directory / f"{source.name}{suffix}.svg"
            _graph_machine(source, "graphviz", state).draw(str(svg_path), format="svg", prog="dot")
            written.append(svg_path)
    return written
