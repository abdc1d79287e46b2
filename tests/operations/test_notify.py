"""sd_notify against a real unix datagram socket in NOTIFY_SOCKET: READY,
STATUS, WATCHDOG pings that stop while the event loop is stuck, STOPPING."""

from __future__ import annotations

import asyncio
import time

import pytest

from intercom_fsm import events as ev
from intercom_fsm.daemon.notify import LoopMonitor, SystemdNotifier, Watchdog, watchdog_interval
from intercom_fsm.daemon.operations import OperationsSettings, start_operations
from tests.operations.conftest import NotifySocket, new_machine, walk_to_streaming
from tests.waiting import eventually, wait_until

PING_INTERVAL = 0.05
TICK = 0.02
LAG_LIMIT = 0.2
DELIVERY_SLACK = 0.05


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = SystemdNotifier.from_environ({})
    assert not notifier.enabled
    assert notifier.ready() is False


def test_an_address_that_is_not_a_unix_socket_is_not_used() -> None:
    assert not SystemdNotifier("vsock:2:1234").enabled


def test_messages_reach_a_path_socket(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": notify_socket.address})
    assert notifier.ready()
    assert notifier.status("two\nlines")
    notifier.close()
    notify_socket.wait_for("STATUS=two lines")
    assert notify_socket.messages() == ["READY=1", "STATUS=two lines"]


def test_messages_reach_an_abstract_socket(abstract_notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier(abstract_notify_socket.address)
    assert notifier.watchdog()
    notifier.close()
    abstract_notify_socket.wait_for("WATCHDOG=1")


def test_a_missing_socket_costs_nothing() -> None:
    notifier = SystemdNotifier("/nonexistent/notify.sock")
    assert notifier.enabled
    assert notifier.ready() is False


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, pid=42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


@pytest.mark.asyncio
async def test_lifecycle_notifications_in_order(notify_socket: NotifySocket) -> None:
    machine = new_machine()
    settings = OperationsSettings(notify_socket=notify_socket.address)
    operations = await start_operations(machine, settings=settings)
    try:
        walk_to_streaming(machine)
        machine.handle(ev.ShutdownRequested("test over"))
    finally:
        await operations.stop()
    await asyncio.to_thread(notify_socket.wait_for, "STOPPING=1")
    messages = notify_socket.messages()
    assert messages[0] == "STATUS=starting"
    assert messages[1] == "READY=1"
    statuses = [message.removeprefix("STATUS=") for message in messages if "STATUS=" in message]
    assert statuses == [
        "starting",
        "not authorized: requesting a device code",
        "waiting for a person to approve this device for code ABCD-EFGH",
        "connecting to the signaling server",
        "online: no viewer",
        "online: setting up 1 viewer",
        "streaming to 1 viewer",
        "stopped",
    ]
    assert messages[-1] == "STOPPING=1"
    assert messages.count("STOPPING=1") == 1
    assert messages.count("READY=1") == 1


@pytest.mark.asyncio
async def test_status_says_why_it_waits_to_retry(notify_socket: NotifySocket) -> None:
    machine = new_machine()
    settings = OperationsSettings(notify_socket=notify_socket.address)
    operations = await start_operations(machine, settings=settings)
    try:
        machine.handle(ev.Started(tokens=None))
        machine.handle(ev.AuthTransientError(ev.AuthOperation.DEVICE_AUTHORIZATION, "timeout"))
    finally:
        await operations.stop()
    expected = "STATUS=waiting to retry after a failure (device authorization failed)"
    await asyncio.to_thread(notify_socket.wait_for, expected)


@pytest.mark.asyncio
async def test_stop_sends_stopping_when_the_machine_did_not_stop(
    notify_socket: NotifySocket,
) -> None:
    operations = await start_operations(
        new_machine(), settings=OperationsSettings(notify_socket=notify_socket.address)
    )
    await operations.stop()
    await operations.stop()
    await asyncio.to_thread(notify_socket.wait_for, "STOPPING=1")
    assert notify_socket.count("STOPPING=1") == 1


async def _watchdog(notify_socket: NotifySocket) -> tuple[Watchdog, LoopMonitor]:
    monitor = LoopMonitor(period=TICK, lag_limit=LAG_LIMIT)
    monitor.start()
    watchdog = Watchdog(SystemdNotifier(notify_socket.address), PING_INTERVAL, monitor)
    watchdog.start()
    return watchdog, monitor


@pytest.mark.asyncio
async def test_watchdog_pings_while_the_loop_is_healthy(notify_socket: NotifySocket) -> None:
    watchdog, monitor = await _watchdog(notify_socket)
    try:
        await eventually(lambda: watchdog.pings >= 5, 5, "five pings")
    finally:
        await watchdog.stop()
        monitor.stop()
    assert watchdog.withheld == 0
    await asyncio.to_thread(notify_socket.wait_for, "WATCHDOG=1", watchdog.pings)


@pytest.mark.asyncio
async def test_no_ping_while_the_loop_is_blocked_nor_right_after(
    notify_socket: NotifySocket,
) -> None:
    watchdog, monitor = await _watchdog(notify_socket)
    blocked: list[float] = []

    def block_the_loop() -> None:
        blocked.append(time.monotonic())
        time.sleep(3 * LAG_LIMIT)
        blocked.append(time.monotonic())

    try:
        await eventually(lambda: watchdog.pings >= 2, 5, "pings before the stall")
        asyncio.get_running_loop().call_soon(block_the_loop)
        await asyncio.sleep(0)  # the stall runs here
        pings_after_block = watchdog.pings
        await eventually(lambda: watchdog.pings > pings_after_block, 5, "pings after the stall")
    finally:
        await watchdog.stop()
        monitor.stop()
    start, end = blocked
    await asyncio.to_thread(notify_socket.wait_for, "WATCHDOG=1", watchdog.pings)
    pings = [entry.at for entry in notify_socket.received if entry.message == "WATCHDOG=1"]
    assert any(at < start for at in pings)
    # (A ping sent just before the stall may be read a moment into it.)
    assert not any(start + DELIVERY_SLACK <= at <= end for at in pings)
    # The first turn after the stall saw the lag and withheld its ping...
    assert watchdog.withheld >= 1
    assert watchdog.pings == len(pings)
    # ...and the pings came back once the loop was healthy again.
    assert watchdog.pings > pings_after_block


@pytest.mark.asyncio
async def test_a_loop_that_keeps_lagging_gets_no_pings(notify_socket: NotifySocket) -> None:
    watchdog, monitor = await _watchdog(notify_socket)
    loop = asyncio.get_running_loop()
    lagging_until = 0.0

    def lag_every_turn() -> None:
        # Each turn of the loop blocked longer than the limit, for a while.
        if time.monotonic() < lagging_until:
            time.sleep(1.5 * LAG_LIMIT)
            loop.call_soon(lag_every_turn)

    try:
        await eventually(lambda: watchdog.pings >= 2, 5, "pings before the lag")
        lagging_until = time.monotonic() + 1.2
        loop.call_soon(lag_every_turn)
        await asyncio.sleep(0.01)
        pings_at_start = watchdog.pings
        await asyncio.sleep(lagging_until - time.monotonic())
        pings_while_lagging = watchdog.pings - pings_at_start
        withheld = watchdog.withheld
        await eventually(lambda: watchdog.pings > pings_at_start, 5, "pings once the lag ended")
        assert monitor.healthy()
    finally:
        await watchdog.stop()
        monitor.stop()
    assert pings_while_lagging == 0
    assert withheld >= 1


@pytest.mark.asyncio
async def test_operations_start_the_watchdog_when_systemd_asks(
    notify_socket: NotifySocket,
) -> None:
    settings = OperationsSettings.from_environ(
        {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "100000"}
    )
    assert settings.watchdog_interval == pytest.approx(0.05)
    operations = await start_operations(new_machine(), settings=settings)
    try:
        watchdog = operations.watchdog
        assert watchdog is not None
        await eventually(lambda: watchdog.pings >= 3, 5, "three pings")
    finally:
        await operations.stop()
    await asyncio.to_thread(notify_socket.wait_for, "WATCHDOG=1", 3)


def test_the_status_line_is_bounded(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier(notify_socket.address)
    assert notifier.status("waiting for a person to approve this device for code " + "W" * 60_000)
    notifier.close()
    wait_until(
        lambda: any(m.startswith("STATUS=") for m in notify_socket.messages()), 5, "the status"
    )
    [message] = [m for m in notify_socket.messages() if m.startswith("STATUS=")]
    assert len(message) <= len("STATUS=") + 200
    assert message.endswith("...")
