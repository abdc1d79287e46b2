"""The README shows what the code does: its diagram, its embedding example and
its failure table are checked against the machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from intercom_fsm import diagram
from intercom_fsm.config import ENVIRONMENT_VARIABLES
from intercom_fsm.machine.table import FAILURE_TABLE

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_diagram_is_the_machines() -> None:
    drawn = diagram.mermaid(diagram.LIFECYCLE)
    body = drawn[drawn.index("stateDiagram-v2") :]
    assert fenced("mermaid")[0] == body


def test_embedding_example_runs_and_reaches_streaming() -> None:
    example = fenced("python")[0]
    assert len(example.strip().splitlines()) <= 15
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Negotiating -> Streaming on PeerConnected" in result.stdout


def test_failure_table_rows_are_in_the_readme() -> None:
    for rule in FAILURE_TABLE:
        assert f"| {', '.join(rule.sources)} | {rule.fault}" in README, rule


def test_every_setting_is_documented() -> None:
    for variable in ENVIRONMENT_VARIABLES:
        assert f"`{variable.name}`" in README, variable.name
