"""The sandbox's plain-Python parts, without a server: pacing, faults, the live registry, URLs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from intercom_fsm.sandbox.backend.faults import Fault, FaultQueue, FaultSpecError
from intercom_fsm.sandbox.backend.live import LiveRegistry
from intercom_fsm.sandbox.backend.pacing import PollPacer
from intercom_fsm.sandbox.files import write_private_json
from intercom_fsm.sandbox.options import SandboxUrls


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_adds_five_seconds_after_each_slow_down() -> None:
    clock = Clock()
    pacer = PollPacer(clock)
    assert not pacer.too_fast("code", interval=1)
    clock.now += 0.5
    assert pacer.too_fast("code", interval=1)
    assert pacer.required_interval("code") == 6
    clock.now += 5.95
    assert not pacer.too_fast("code", interval=1), "within the tolerance"
    clock.now += 2
    assert pacer.too_fast("code", interval=1)
    assert pacer.required_interval("code") == 11
    pacer.forget("code")
    assert pacer.required_interval("code") is None


def test_the_pacer_keeps_device_codes_apart() -> None:
    clock = Clock()
    pacer = PollPacer(clock)
    assert not pacer.too_fast("a", interval=5)
    assert not pacer.too_fast("b", interval=5)


def test_faults_are_taken_in_order_per_endpoint() -> None:
    queue = FaultQueue()
    queue.inject("token", Fault.from_spec({"kind": "status", "status": 503}), count=2)
    queue.inject("token", Fault.from_spec({"kind": "hang", "seconds": 2}), count=1)
    assert queue.take("device-authorization") is None
    assert [queue.take("token") for _ in range(4)] == [
        Fault("status", 503),
        Fault("status", 503),
        Fault("hang", seconds=2.0),
        None,
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 200},
        {"kind": "hang"},
        {"kind": "hang", "seconds": True},
        {"kind": "html", "status": 999},
    ],
)
def test_a_fault_that_makes_no_sense_is_refused(spec: dict[str, object]) -> None:
    with pytest.raises(FaultSpecError):
        Fault.from_spec(spec)


def test_the_registry_routes_by_session_and_lets_the_newest_device_win() -> None:
    live = LiveRegistry()
    assert live.attach_device("code", "device-1") is None
    assert live.attach_device("code", "device-2") == "device-1"
    assert not live.detach_device("code", "device-1"), "an older socket leaving changes nothing"
    assert live.device_channel("code") == "device-2"
    first, second = live.add_viewer("code", "viewer-1"), live.add_viewer("code", "viewer-2")
    assert first != second
    assert live.viewer_channel("code", second) == "viewer-2"
    assert live.viewer_counts() == {"code": 2}
    live.remove_viewer("code", first)
    assert live.viewer_channels("code") == ["viewer-2"]
    assert live.detach_device("code", "device-2")
    assert live.connected_devices() == set()


def test_the_registry_logs_frames_for_the_control_api() -> None:
    live = LiveRegistry()
    live.record("a", "viewer_to_device", session="v-1", text="{}", delivered=True)
    live.record("b", "control_to_device", session=None, binary=b"\x01", delivered=False)
    assert [frame.device_code for frame in live.frames()] == ["a", "b"]
    (only_b,) = live.frames("b")
    assert only_b.binary_base64 == "AQ=="
    assert live.frames(after=only_b.seq) == []
    live.clear_frames()
    assert live.frames() == []


@pytest.mark.parametrize(
    ("host", "http_base"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_urls_reach_the_bound_address(host: str, http_base: str) -> None:
    urls = SandboxUrls.for_address(host, 8000)
    assert urls.http_base_url == http_base
    assert urls.ws_base_url == "ws" + http_base.removeprefix("http")
    assert urls.verification_uri == f"{http_base}/device/"


def test_private_files_are_written_whole_and_unreadable_to_others(tmp_path: Path) -> None:
    path = tmp_path / "oauth.json"
    write_private_json(path, {"client_id": "x"})
    write_private_json(path, {"client_id": "y"})
    assert json.loads(path.read_text()) == {"client_id": "y"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["oauth.json"]
