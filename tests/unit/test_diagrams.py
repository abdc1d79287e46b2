"""The committed diagrams are the machine's own: a test fails when they drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom_fsm import diagram
from intercom_fsm.cli import main
from intercom_fsm.states import State

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"


@pytest.mark.parametrize("source", diagram.DIAGRAMS, ids=lambda source: source.name)
def test_committed_mermaid_matches_the_machine(source: diagram.DiagramSource) -> None:
    committed = (DIAGRAMS / f"{source.name}.mmd").read_text()
    assert committed == diagram.mermaid(source), "run 'intercom-fsm diagram' and commit"


@pytest.mark.parametrize("path", sorted(DIAGRAMS.glob("*-*.mmd")), ids=lambda path: path.name)
def test_committed_highlighted_diagrams_match_the_machine(path: Path) -> None:
    name, state = path.stem.split("-", 1)
    source = next(source for source in diagram.DIAGRAMS if source.name == name)
    assert path.read_text() == diagram.mermaid(source, state)
    assert f"Class {state} s_active" in path.read_text()


def test_every_state_and_state_changing_row_is_drawn() -> None:
    text = diagram.mermaid(diagram.LIFECYCLE)
    for state in State:
        assert f'state "{state.value}"' in text
    for row in diagram.LIFECYCLE.rows:
        if row.dest is not None:
            assert f"{row.sources[0]} --> {row.dest}" in text or any(
                f"{source} --> {row.dest}" in text for source in row.sources
            )


def test_diagram_command_writes_identical_files_and_checks_them(tmp_path: Path) -> None:
    assert main(["diagram", "--output", str(tmp_path)]) == 0
    for source in diagram.DIAGRAMS:
        assert (tmp_path / f"{source.name}.mmd").read_text() == diagram.mermaid(source)
    assert main(["diagram", "--check", "--output", str(tmp_path)]) == 0
    (tmp_path / "lifecycle.mmd").write_text("stale\n")
    assert main(["diagram", "--check", "--output", str(tmp_path)]) == 1


def test_highlighting_a_state(tmp_path: Path) -> None:
    main(["diagram", "--output", str(tmp_path), "--state", "Streaming"])
    text = (tmp_path / "lifecycle-Streaming.mmd").read_text()
    assert "Class Streaming s_active" in text
    assert "Class Idle s_default" in text
