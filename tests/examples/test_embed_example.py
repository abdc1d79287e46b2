"""The embedding example runs as a user would run it, and a viewer gets its
frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed_custom_adapters.py"


@pytest.mark.timeout(90)
def test_embedding_example_streams_to_its_viewer_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=EXAMPLE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "device: Negotiating -> Streaming on PeerConnected" in lines
    assert "viewer received 30 frames of 320x240" in lines
    assert lines.index("viewer received 30 frames of 320x240") < lines.index(
        "device: Streaming -> Stopped on ShutdownRequested"
    )


def test_example_stays_short() -> None:
    assert len(EXAMPLE.read_text().splitlines()) <= 200
