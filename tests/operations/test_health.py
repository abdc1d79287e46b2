"""The monitoring endpoint, scraped for real over 127.0.0.1: /healthz's verdict
and /metrics in the Prometheus text format."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from intercom_fsm import events as ev
from intercom_fsm.adapters.camera.settings import CameraStats
from intercom_fsm.config import HealthAddress
from intercom_fsm.daemon.operations import Operations, OperationsSettings, start_operations
from intercom_fsm.daemon.status_client import fetch_live_status
from intercom_fsm.effects import Timer
from intercom_fsm.events import AuthOperation
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State
from intercom_fsm.testing import FakeClock
from tests.operations.conftest import new_machine, walk_to_streaming

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

STUCK_SECONDS = 300.0
ANY_FREE_PORT = HealthAddress("127.0.0.1", 0)
CAMERA = CameraStats(frames_delivered=42, frames_dropped=3, online=True)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
def clock() -> FakeClock:
    """Monotonic seconds for the time in a state."""
    return FakeClock(now=1000.0)


@pytest.fixture
def machine() -> LifecycleMachine:
    return new_machine()


@pytest_asyncio.fixture
async def operations(machine: LifecycleMachine, clock: FakeClock) -> AsyncIterator[Operations]:
    settings = OperationsSettings(health_address=ANY_FREE_PORT, stuck_seconds=STUCK_SECONDS)
    operations = await start_operations(
        machine, settings=settings, camera_stats=lambda: CAMERA, clock=clock
    )
    try:
        yield operations
    finally:
        await operations.stop()


def url(operations: Operations, path: str) -> str:
    return f"http://127.0.0.1:{operations.health_port}{path}"


async def healthz(http: aiohttp.ClientSession, operations: Operations) -> tuple[int, Any]:
    async with http.get(url(operations, "/healthz")) as response:
        return response.status, await response.json()


async def metrics(http: aiohttp.ClientSession, operations: Operations) -> dict[str, list[Sample]]:
    async with http.get(url(operations, "/metrics")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matching) == 1, (name, labels, samples)
    return matching[0]


async def test_healthz_is_200_while_streaming(
    http: aiohttp.ClientSession, operations: Operations, machine: LifecycleMachine
) -> None:
    walk_to_streaming(machine)
    status, body = await healthz(http, operations)
    assert status == 200
    assert body["healthy"] is True
    assert body["status"] == "ok"
    assert body["state"] == "Streaming"
    assert body["viewers"] == 1
    assert body["streaming_viewers"] == 1
    assert body["seconds_in_state"] == 0


async def test_streaming_for_days_is_healthy(
    http: aiohttp.ClientSession,
    operations: Operations,
    machine: LifecycleMachine,
    clock: FakeClock,
) -> None:
    walk_to_streaming(machine)
    clock.advance(3 * 86400)
    status, body = await healthz(http, operations)
    assert (status, body["state"], body["seconds_in_state"]) == (200, "Streaming", 3 * 86400)


async def test_healthz_is_503_when_stuck_in_a_state(
    http: aiohttp.ClientSession,
    operations: Operations,
    machine: LifecycleMachine,
    clock: FakeClock,
) -> None:
    machine.handle(ev.Started(tokens=None))
    clock.advance(STUCK_SECONDS - 1)
    status, body = await healthz(http, operations)
    assert (status, body["state"]) == (200, "Unauthorized")
    clock.advance(2)
    status, body = await healthz(http, operations)
    assert status == 503
    assert body["healthy"] is False
    assert body["status"] == "stuck"
    assert body["state"] == "Unauthorized"
    assert body["seconds_in_state"] == STUCK_SECONDS + 1


async def test_going_round_the_failure_states_counts_as_stuck(
    http: aiohttp.ClientSession,
    operations: Operations,
    machine: LifecycleMachine,
    clock: FakeClock,
) -> None:
    machine.handle(ev.Started(tokens=None))
    clock.advance(STUCK_SECONDS / 2 + 1)
    machine.handle(ev.AuthTransientError(AuthOperation.DEVICE_AUTHORIZATION, "timeout"))
    clock.advance(STUCK_SECONDS / 2 + 1)
    status, body = await healthz(http, operations)
    assert status == 503
    assert body["state"] == "Backoff"
    assert body["seconds_in_state"] < STUCK_SECONDS
    assert body["seconds_unavailable"] > STUCK_SECONDS
    assert body["last_failure"] == "device authorization failed"


async def test_healthz_is_503_when_stopped(
    http: aiohttp.ClientSession, operations: Operations, machine: LifecycleMachine
) -> None:
    machine.handle(ev.ShutdownRequested())
    status, body = await healthz(http, operations)
    assert (status, body["status"], body["state"]) == (503, "stopped", "Stopped")


async def test_healthz_is_503_right_after_the_loop_was_stuck(http: aiohttp.ClientSession) -> None:
    machine = new_machine()
    settings = OperationsSettings(health_address=ANY_FREE_PORT, loop_tick=0.1, loop_lag_limit=0.2)
    operations = await start_operations(machine, settings=settings)
    try:
        walk_to_streaming(machine)
        assert (await healthz(http, operations))[0] == 200
        # The tick that runs after the stall measures it; the next one, a
        # tick period later, finds the loop healthy again.
        asyncio.get_running_loop().call_soon(_block, 0.5)
        status, body = await healthz(http, operations)
        assert (status, body["status"]) == (503, "loop lagging")
        assert body["loop_lag_seconds"] > 0.2
        healthy_again: list[int] = []
        deadline = time.monotonic() + 3
        while not healthy_again and time.monotonic() < deadline:
            if (await healthz(http, operations))[0] == 200:
                healthy_again.append(200)
            else:
                await asyncio.sleep(0.05)
        assert healthy_again, "/healthz did not come back to 200 after the stall"
    finally:
        await operations.stop()


def _block(seconds: float) -> None:
    time.sleep(seconds)


async def test_metrics_after_a_run_to_streaming(
    http: aiohttp.ClientSession, operations: Operations, machine: LifecycleMachine
) -> None:
    machine.handle(ev.Started(tokens=None))
    machine.handle(ev.AuthTransientError(AuthOperation.DEVICE_AUTHORIZATION, "timeout"))
    machine.handle(ev.BackoffElapsed(machine.context.pending_timers[(Timer.BACKOFF, None)]))
    walk_to_streaming(machine)
    machine.handle(ev.SocketOpened())  # means nothing while streaming
    found = await metrics(http, operations)

    state = found["intercom_fsm_state"]
    assert value(state, "intercom_fsm_state", state="Streaming") == 1
    assert all(
        value(state, "intercom_fsm_state", state=other.value) == 0
        for other in State
        if other is not State.STREAMING
    )
    transitions = found["intercom_fsm_transitions"]
    total = "intercom_fsm_transitions_total"
    assert value(transitions, total, **{"from": "Idle", "to": "Unauthorized"}) == 1
    assert value(transitions, total, **{"from": "Unauthorized", "to": "Backoff"}) == 1
    assert value(transitions, total, **{"from": "Backoff", "to": "Unauthorized"}) == 1
    assert value(transitions, total, **{"from": "Unauthorized", "to": "AwaitingApproval"}) == 1
    assert value(transitions, total, **{"from": "Negotiating", "to": "Streaming"}) == 1

    assert value(found["intercom_fsm_viewers"], "intercom_fsm_viewers") == 1
    assert value(found["intercom_fsm_streaming_viewers"], "intercom_fsm_streaming_viewers") == 1
    assert value(found["intercom_fsm_frames_sent"], "intercom_fsm_frames_sent_total") == 42
    assert value(found["intercom_fsm_frames_dropped"], "intercom_fsm_frames_dropped_total") == 3
    assert value(found["intercom_fsm_camera_online"], "intercom_fsm_camera_online") == 1
    assert value(found["intercom_fsm_reconnects"], "intercom_fsm_reconnects_total") == 0
    refreshes = found["intercom_fsm_token_refreshes"]
    assert value(refreshes, "intercom_fsm_token_refreshes_total") == machine.counters.refreshes
    ignored = found["intercom_fsm_ignored_events"]
    assert (
        value(ignored, "intercom_fsm_ignored_events_total", state="Streaming", event="SocketOpened")
        == 1
    )
    last_error = found["intercom_fsm_last_error_info"]
    assert value(last_error, "intercom_fsm_last_error_info", reason="device authorization failed")
    assert "intercom_fsm_state_seconds" in found
    assert "intercom_fsm_event_loop_lag_seconds" in found
    assert "intercom_fsm_build_info" in found
    assert "intercom_fsm_process_resident_memory_bytes" in found


async def test_reconnects_count_sockets_after_the_first(
    http: aiohttp.ClientSession, operations: Operations, machine: LifecycleMachine
) -> None:
    ledger = walk_to_streaming(machine)
    closed = ev.SocketClosed(1006, "gone")
    ledger.record(closed, machine.handle(closed))
    elapsed = ev.BackoffElapsed(machine.context.pending_timers[(Timer.BACKOFF, None)])
    ledger.record(elapsed, machine.handle(elapsed))
    walk_to_streaming(machine, ledger)
    found = await metrics(http, operations)
    assert value(found["intercom_fsm_reconnects"], "intercom_fsm_reconnects_total") == 1
    assert value(found["intercom_fsm_unavailable_seconds"], "intercom_fsm_unavailable_seconds") == 0


async def test_the_endpoint_uses_a_registry_of_its_own(
    http: aiohttp.ClientSession, operations: Operations
) -> None:
    from prometheus_client import REGISTRY

    assert "intercom_fsm_state" not in {metric.name for metric in REGISTRY.collect()}
    assert "intercom_fsm_state" in await metrics(http, operations)


async def test_a_taken_port_leaves_the_daemon_running_without_endpoint(
    taken_port: int,
) -> None:
    settings = OperationsSettings(health_address=HealthAddress("127.0.0.1", taken_port))
    operations = await start_operations(new_machine(), settings=settings)
    try:
        assert operations.server is None
        assert operations.report().state == "Idle"
    finally:
        await operations.stop()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


async def test_status_command_reads_the_live_state(
    operations: Operations, machine: LifecycleMachine
) -> None:
    walk_to_streaming(machine)
    address = HealthAddress("127.0.0.1", operations.health_port or 0)
    live = await asyncio.to_thread(fetch_live_status, address)
    assert live.reachable and live.healthy
    assert (live.state, live.viewers) == ("Streaming", 1)
    assert live.describe() == "Streaming for 0 s, 1 viewer(s), healthy"


async def test_status_command_reads_an_unhealthy_state_too(
    operations: Operations, machine: LifecycleMachine
) -> None:
    machine.handle(ev.ShutdownRequested())
    address = HealthAddress("127.0.0.1", operations.health_port or 0)
    live = await asyncio.to_thread(fetch_live_status, address)
    assert live.reachable and not live.healthy
    assert live.describe() == "Stopped for 0 s, 0 viewer(s), UNHEALTHY: stopped"


async def test_status_command_without_a_daemon() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    live = await asyncio.to_thread(fetch_live_status, HealthAddress("127.0.0.1", free_port), 2.0)
    assert not live.reachable
    assert live.problem is not None and f"127.0.0.1:{free_port}" in live.problem


async def test_calls_held_through_a_reconnect_are_shown(
    http: aiohttp.ClientSession, operations: Operations, machine: LifecycleMachine
) -> None:
    ledger = walk_to_streaming(machine)
    closed = ev.SocketClosed(1006, "gone")
    ledger.record(closed, machine.handle(closed))
    found = await metrics(http, operations)
    assert value(found["intercom_fsm_held_viewers"], "intercom_fsm_held_viewers") == 1
    assert value(found["intercom_fsm_calls_held"], "intercom_fsm_calls_held_total") == 1
    address = HealthAddress("127.0.0.1", operations.health_port or 0)
    live = await asyncio.to_thread(fetch_live_status, address)
    assert live.describe().startswith("Backoff for 0 s, 1 viewer(s) (1 held through a reconnect)")
    assert value(found["intercom_fsm_calls_resumed"], "intercom_fsm_calls_resumed_total") == 0
    elapsed = ev.BackoffElapsed(machine.context.pending_timers[(Timer.BACKOFF, None)])
    ledger.record(elapsed, machine.handle(elapsed))
    walk_to_streaming(machine, ledger)
    found = await metrics(http, operations)
    assert value(found["intercom_fsm_held_viewers"], "intercom_fsm_held_viewers") == 0
    assert value(found["intercom_fsm_calls_resumed"], "intercom_fsm_calls_resumed_total") == 1


async def test_status_shows_the_cameras_path_to_viewers(machine: LifecycleMachine) -> None:
    settings = OperationsSettings(health_address=ANY_FREE_PORT)
    lines = ["camera: H.264 High 3.0 640x480, passed through", "H.264 encoder: libx264"]
    operations = await start_operations(machine, settings=settings, media_lines=lambda: lines)
    try:
        walk_to_streaming(machine)
        address = HealthAddress("127.0.0.1", operations.health_port or 0)
        live = await asyncio.to_thread(fetch_live_status, address)
        assert live.describe().splitlines() == [
            "Streaming for 0 s, 1 viewer(s), healthy",
            "  camera: H.264 High 3.0 640x480, passed through",
            "  H.264 encoder: libx264",
        ]
    finally:
        await operations.stop()
