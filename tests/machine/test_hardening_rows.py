"""The machine's side of the hardening review: flows the server ends, clients
it rejects, denials that keep a person from being shown a new code at once,
polls that time out, durations on the monotonic clock, bounded memory for
unknown message types. Each test fails on the machine before these rows."""

from __future__ import annotations

from typing import Any

import pytest

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.events import AuthOperation
from intercom_fsm.machine.backoff import BackoffPolicy
from intercom_fsm.machine.context import MachineSettings
from intercom_fsm.states import State
from intercom_fsm.testing import MachineDriver

NOW = 1_700_000_000.0
POLICY = BackoffPolicy(base=1.0, cap=60.0, stable_after=30.0)


class Driver(MachineDriver):
    def __init__(self, *, jitter: float = 0.0, **settings: Any) -> None:
        super().__init__(MachineSettings(backoff=POLICY, **settings), jitter=jitter, now=NOW)


def state_of(driver: MachineDriver) -> State:
    """The machine's state, read afresh. mypy narrows ``driver.machine.state``
    to the state one assert named and keeps it through the next ``send``."""
    return driver.machine.state


def test_a_denial_waits_at_least_the_pause_and_the_wait_grows_across_denials() -> None:
    driver = Driver(jitter=0.5).walk_to(State.AWAITING_APPROVAL)
    waits = []
    for _ in range(4):
        driver.send(ev.AccessDenied("no"))
        assert state_of(driver) is State.BACKOFF
        waits.append(driver.delay_of(Timer.BACKOFF))
        driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
        assert state_of(driver) is State.UNAUTHORIZED
        driver.send(ev.DeviceCodeIssued("dc2", "NEW-CODE", "https://x/device", 600, 5))
    assert all(wait >= 30.0 for wait in waits), waits
    assert driver.machine.context.backoff.attempt == 4
    # A grant ends the run of denials: the next failure starts small again.
    driver.send(ev.TokensGranted(ev.TokenGrant("a", "r", 3600)))
    assert driver.machine.context.flows_refused_in_a_row == 0


def test_a_flow_the_server_ends_is_not_polled_again() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.send(ev.DeviceFlowFailed("invalid_grant", "device code unknown"))
    assert state_of(driver) is State.BACKOFF
    assert (Timer.POLL, None) not in driver.ledger.pending_timers
    assert driver.machine.context.flow is None
    assert "invalid_grant" in driver.problems()[0]
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.UNAUTHORIZED
    assert driver.effects[-1] == fx.RequestDeviceCode()


@pytest.mark.parametrize("operation", [AuthOperation.DEVICE_AUTHORIZATION, AuthOperation.POLL])
def test_a_rejected_client_waits_the_long_pause_before_a_new_flow(operation: AuthOperation) -> None:
    driver = Driver().walk_to(
        State.UNAUTHORIZED
        if operation is AuthOperation.DEVICE_AUTHORIZATION
        else State.AWAITING_APPROVAL
    )
    driver.send(ev.ClientRejected(operation, "invalid_client"))
    assert state_of(driver) is State.BACKOFF
    assert driver.delay_of(Timer.BACKOFF) == 600.0
    [problem] = driver.problems()
    assert "invalid_client" in problem and "OAUTH_CLIENT_ID" in problem


def test_a_rejected_client_on_refresh_keeps_the_grant_and_the_calls() -> None:
    driver = Driver().walk_to(State.STREAMING)
    tokens = driver.machine.context.tokens
    driver.send(ev.AccessTokenExpiring(driver.timer(Timer.ACCESS_TOKEN_EXPIRY)))
    driver.send(ev.ClientRejected(AuthOperation.REFRESH, "unauthorized_client"))
    assert state_of(driver) is State.STREAMING
    assert driver.machine.context.tokens is tokens
    assert driver.delay_of(Timer.ACCESS_TOKEN_EXPIRY) == 600.0
    assert driver.machine.context.refresh_in_flight is False


def test_a_poll_that_timed_out_polls_less_often_without_a_backoff() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    flow = driver.machine.context.flow
    assert flow is not None
    interval = flow.interval
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    driver.send(ev.AuthTransientError(AuthOperation.POLL, "timed out", timed_out=True))
    assert state_of(driver) is State.AWAITING_APPROVAL
    assert driver.delay_of(Timer.POLL) == 2 * interval
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    driver.send(ev.AuthTransientError(AuthOperation.POLL, "timed out", timed_out=True))
    assert driver.delay_of(Timer.POLL) == 4 * interval


def test_a_wall_clock_step_does_not_expire_the_code_a_person_is_typing() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    assert driver.delay_of(Timer.POLL) > 0
    driver.clock.advance(86_400)  # a board without a clock, then NTP
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    assert driver.effects == [fx.PollToken("device")]
    assert state_of(driver) is State.AWAITING_APPROVAL


def test_the_flow_expires_on_its_own_timer_even_when_no_poll_is_due() -> None:
    driver = Driver()
    driver.send(ev.Started(tokens=None))
    driver.send(ev.DeviceCodeIssued("dc", "CODE", "https://x/device", 120, interval=1e6))
    assert driver.delay_of(Timer.FLOW_EXPIRY) == 120
    driver.send(ev.FlowExpiryDue(driver.timer(Timer.FLOW_EXPIRY)))
    assert state_of(driver) is State.UNAUTHORIZED


def test_a_flow_resumed_after_a_backoff_keeps_its_remaining_lifetime() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.monotonic.advance(100)
    driver.send(ev.AuthTransientError(AuthOperation.POLL, "503"))
    driver.monotonic.advance(50)
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.AWAITING_APPROVAL
    assert driver.delay_of(Timer.FLOW_EXPIRY) == 600 - 150


def test_the_offer_rate_is_measured_on_the_monotonic_clock() -> None:
    driver = Driver(max_viewers=32).walk_to(State.NEGOTIATING)
    for index in range(5):
        driver.send(ev.OfferReceived(f"v{index}", "offer"))
    driver.clock.advance(3600)  # wall time jumps; no time passed
    driver.send(ev.OfferReceived("late", "offer"))
    assert "more than 5 offers" in driver.problems()[0]


def test_unknown_message_types_are_remembered_up_to_a_bound() -> None:
    driver = Driver().walk_to(State.NEGOTIATING)
    for index in range(500):
        driver.send(ev.UnknownMessage(f"type-{index}"))
    assert len(driver.machine.context.unknown_types_reported) == 32
    assert driver.problems() and "more than 32 unknown types" in driver.problems()[0]
    driver.send(ev.UnknownMessage("type-0"))
    assert driver.problems() == []
