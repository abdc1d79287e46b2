"""The pipeline bench's baseline (bench/naive_client.py) still streams: a real
sandbox (auto-approve), the client as a subprocess reading a small video file,
a viewer made with aiortc receiving its frames. Without this, a broken baseline
would make the bench's comparison meaningless without anyone noticing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench.clients import naive_client_arguments
from bench.naive_client import parse_args
from intercom_fsm.sandbox.process import SandboxInfo, SandboxProcess
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback

restrict_ice_to_loopback()

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_INFO = SandboxInfo(
    http_base_url="http://127.0.0.1:8000",
    ws_base_url="ws://127.0.0.1:8000",
    viewer_url="http://127.0.0.1:8000/viewer/",
    verification_uri="http://127.0.0.1:8000/device/",
    control_url=None,
    client_id="door-client",
    client_secret="secret",
    username="admin",
    password="password",
    state_dir=Path("/tmp/sandbox"),
    pid=1,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(
        auto_approve=True, device_interval=1, device_expires_in=120, test_controls=True
    ) as process:
        yield process


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """Ten seconds of 320x240 MJPEG at 10 fps, a bar moving across."""
    path = tmp_path / "source.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240))
    for index in range(100):
        picture = np.full((240, 320, 3), 60, np.uint8)
        x = index * 3 % 300
        cv2.rectangle(picture, (x, 100), (x + 20, 140), (0, 200, 255), -1)
        writer.write(picture)
    writer.release()
    return path


def start_client(info: SandboxInfo, source: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "bench.naive_client",
        "--loopback-ice",
        *naive_client_arguments(info, str(source)),
    ]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


async def wait_for_event(
    log: Path, client: subprocess.Popen[bytes], name: str, within: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in events(log):
            if event.get("event") == name:
                return event
        if client.poll() is not None:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name!r} from the naive client; its output:\n{log.read_text()}")


def stop(client: subprocess.Popen[bytes]) -> None:
    if client.poll() is None:
        client.send_signal(signal.SIGTERM)
        try:
            client.wait(timeout=10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait(timeout=10)


@pytest.mark.asyncio
async def test_naive_client_streams_to_a_viewer(
    sandbox: SandboxProcess, video_file: Path, tmp_path: Path
) -> None:
    log = tmp_path / "naive.log"
    client = start_client(sandbox.info, video_file, log)
    viewer: MediaViewer | None = None
    try:
        signed_in = await wait_for_event(log, client, "signed_in")
        await wait_for_event(log, client, "connected")
        viewer = await MediaViewer(sandbox.info, signed_in["device_code"]).start()
        await viewer.wait_for_frames(10)
        assert viewer.sizes == {(320, 240)}

        started = time.monotonic()
        client.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(client.wait, 10)
        assert code == 0, log.read_text()
        assert time.monotonic() - started < 3
    finally:
        if viewer is not None:
            await viewer.close()
        stop(client)


@pytest.mark.parametrize("secret", ["-starts-with-a-dash", "--looks-like-an-option", None])
def test_the_command_line_carries_any_generated_secret(secret: str | None) -> None:
    # token_urlsafe's alphabet has "-": one sandbox in 64 hands out a secret
    # beginning with it, which once made the baseline refuse its arguments.
    info = dataclasses.replace(SANDBOX_INFO, client_secret=secret)
    args = parse_args(naive_client_arguments(info, "/tmp/source.avi"))
    assert args.client_secret == (secret or "")
    assert args.client_id == info.client_id
    assert args.source == "/tmp/source.avi"
