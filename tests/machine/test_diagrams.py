"""The committed diagrams are the machine's own: a test fails when they drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom_fsm import diagram
from intercom_fsm.cli import main

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


@pytest.mark.parametrize("source", diagram.DIAGRAMS, ids=lambda source: source.name)
def test_committed_rules_list_every_row_of_the_machine(source: diagram.DiagramSource) -> None:
    committed = (DIAGRAMS / f"{source.name}-rules.md").read_text()
    assert committed == diagram.rules(source), "run 'intercom-fsm diagram' and commit"
    rows = diagram.running_machine(source).rows
    assert (
        len([line for line in committed.splitlines() if line[:2] == "| " and "|---" not in line])
        == len(rows) + 1
    )


@pytest.mark.parametrize("source", diagram.DIAGRAMS, ids=lambda source: source.name)
def test_every_state_and_state_changing_row_is_drawn(source: diagram.DiagramSource) -> None:
    text = diagram.mermaid(source)
    for state in source.states:
        assert f'state "{state}"' in text
    for row in diagram.running_machine(source).rows:
        if row.dest is None:
            continue
        label = row.trigger + (f" [{row.guard.label}]" if row.guard else "")
        for source_state in row.sources:
            [edge] = [
                line for line in text.splitlines() if f"{source_state} --> {row.dest}:" in line
            ]
            assert label in edge.split(": ", 1)[1].split(" | "), (label, edge)


def test_the_session_diagram_shows_each_outcome_of_an_offer() -> None:
    text = diagram.mermaid(diagram.SESSION)
    assert (
        "New --> Refused: OfferReceived [offer rate exceeded] | OfferReceived [viewer cap reached]"
        in text
    )
    assert "New --> Offered: OfferReceived [session exists] | OfferReceived" in text
    assert "Connected --> Held: SignalingLost" in text
    assert "Held --> Connected: SignalingRestored" in text


def test_diagram_command_writes_identical_files_and_checks_them(tmp_path: Path) -> None:
    assert main(["diagram", "--output", str(tmp_path)]) == 0
    for source in diagram.DIAGRAMS:
        assert (tmp_path / f"{source.name}.mmd").read_text() == diagram.mermaid(source)
    assert main(["diagram", "--check", "--output", str(tmp_path)]) == 0
    (tmp_path / "session-rules.md").write_text("stale\n")
    assert main(["diagram", "--check", "--output", str(tmp_path)]) == 1
    main(["diagram", "--output", str(tmp_path)])
    (tmp_path / "lifecycle.mmd").write_text("stale\n")
    assert main(["diagram", "--check", "--output", str(tmp_path)]) == 1


def test_highlighting_a_state(tmp_path: Path) -> None:
    main(["diagram", "--output", str(tmp_path), "--state", "Streaming"])
    text = (tmp_path / "lifecycle-Streaming.mmd").read_text()
    assert "Class Streaming s_active" in text
    assert "Class Idle s_default" in text
