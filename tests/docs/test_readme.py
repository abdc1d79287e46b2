"""The README shows what the code does: its diagram, its embedding example, its
failure table and its configuration table are checked against the code, row by
whole row."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from intercom_fsm import diagram
from intercom_fsm.config import ENVIRONMENT_VARIABLES
from intercom_fsm.config_docs import environment_table_markdown, envrc_example
from intercom_fsm.machine.table import FAILURE_TABLE, FailureRule

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def table_after(heading: str) -> list[str]:
    """The rows (header and separator included) of the first table below ``heading``."""
    section = README[README.index(f"\n{heading}\n") :]
    lines = section.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows: list[str] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def failure_row(rule: FailureRule) -> str:
    """The README's row for one rule: ``| in state | fault [guard] | to → resume | why |``."""
    fault = f"{rule.fault} [{rule.guard}]" if rule.guard else rule.fault
    goes_to = f"{rule.leads_to} → {rule.resume}" if rule.resume else rule.leads_to
    return f"| {', '.join(rule.sources)} | {fault} | {goes_to} | {rule.reason} |"


def test_readme_diagram_is_the_machines() -> None:
    drawn = diagram.mermaid(diagram.LIFECYCLE)
    body = drawn[drawn.index("stateDiagram-v2") :]
    assert fenced("mermaid")[0] == body


def test_embedding_example_runs_and_reaches_streaming() -> None:
    example = fenced("python")[0]
    assert len(example.strip().splitlines()) <= 15
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})
    assert "Negotiating -> Streaming on PeerConnected" in printed.getvalue()


def test_the_machines_failure_table_is_the_readmes_row_for_row() -> None:
    expected = [failure_row(rule) for rule in FAILURE_TABLE]
    shown = table_after("### The machine's failure table")
    assert shown[:2] == [
        "| in state | fault | goes to | why / what is kept |",
        "|---|---|---|---|",
    ]
    assert shown[2:] == expected


def test_every_setting_is_documented() -> None:
    assert table_after("## Configuration") == environment_table_markdown().splitlines()
    for variable in ENVIRONMENT_VARIABLES:
        assert f"| `{variable.name}` |" in README, variable.name


def test_the_envrc_example_is_drawn_from_the_rows() -> None:
    assert (ROOT / ".envrc.example").read_text() == envrc_example()
