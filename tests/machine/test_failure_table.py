"""One example per row of the failure table: which fault leads where, and what
is kept."""

from __future__ import annotations

import pytest

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.machine.session import SessionState
from intercom_fsm.machine.table import FAILURE_TABLE
from intercom_fsm.states import State
from intercom_fsm.testing import GRANT, MachineDriver

NOW = 1_700_000_000.0
TRANSIENT_POLL = ev.AuthTransientError(ev.AuthOperation.POLL, "503")
TRANSIENT_REFRESH = ev.AuthTransientError(ev.AuthOperation.REFRESH, "timeout")
TRANSIENT_START = ev.AuthTransientError(ev.AuthOperation.DEVICE_AUTHORIZATION, "refused")


class Driver(MachineDriver):
    def __init__(self) -> None:
        super().__init__(now=NOW, jitter=0.3)


def state_of(driver: MachineDriver) -> State:
    """The machine's state, read afresh. mypy narrows ``driver.machine.state``
    to the state one assert named and keeps it through the next ``send``."""
    return driver.machine.state


def authorized_and_refreshing() -> Driver:
    driver = Driver()
    stale = ev.StoredTokens("old-access", "old-refresh", expires_at=NOW - 10, device_code="dc")
    driver.send(ev.Started(tokens=stale))
    assert state_of(driver) is State.AUTHORIZED
    assert driver.kinds() == [fx.ScheduleTimer, fx.RefreshTokens]
    return driver


def test_device_authorization_failure_backs_off_then_starts_a_new_flow() -> None:
    driver = Driver().walk_to(State.UNAUTHORIZED)
    driver.send(TRANSIENT_START)
    assert state_of(driver) is State.BACKOFF
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.UNAUTHORIZED
    assert driver.kinds() == [fx.RequestDeviceCode]


def test_transient_poll_error_keeps_the_flow() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    flow = driver.machine.context.flow
    driver.send(TRANSIENT_POLL)
    assert state_of(driver) is State.BACKOFF
    assert driver.machine.context.flow is flow
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.AWAITING_APPROVAL
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    assert driver.effects == [fx.PollToken("device")]


def test_slow_down_adds_five_seconds_for_the_rest_of_the_flow() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.send(ev.SlowDown())
    driver.send(ev.SlowDown())
    delays = [delay for _timer, delay in driver.ledger.delays]
    assert delays[-2:] == [10, 15]
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    driver.send(ev.AuthorizationPending())
    assert driver.ledger.delays[-1] == (Timer.POLL, 15)


def test_access_denied_reports_and_starts_a_new_flow_only_after_backoff() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.send(ev.AccessDenied("no"))
    assert state_of(driver) is State.BACKOFF
    assert fx.RequestDeviceCode not in driver.kinds()
    assert any(isinstance(e, fx.ReportProblem) and "denied" in e.message for e in driver.effects)
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.UNAUTHORIZED
    assert driver.kinds() == [fx.RequestDeviceCode]


@pytest.mark.parametrize("how", ["server", "locally"])
def test_expired_device_code_starts_a_new_flow(how: str) -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    if how == "server":
        driver.send(ev.DeviceCodeExpired())
    else:
        driver.advance(601)
        driver.send(ev.FlowExpiryDue(driver.timer(Timer.FLOW_EXPIRY)))
    assert state_of(driver) is State.UNAUTHORIZED
    assert fx.RequestDeviceCode in driver.kinds()
    assert fx.PollToken not in driver.kinds()


def test_transient_refresh_error_keeps_tokens_and_retries_after_backoff() -> None:
    driver = authorized_and_refreshing()
    tokens = driver.machine.context.tokens
    driver.send(TRANSIENT_REFRESH)
    assert state_of(driver) is State.BACKOFF
    assert driver.machine.context.tokens is tokens
    assert fx.DiscardTokens not in driver.kinds()
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.AUTHORIZED
    assert driver.effects == [fx.RefreshTokens("old-refresh")]


def test_transient_refresh_error_while_streaming_keeps_streaming() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.AccessTokenExpiring(driver.timer(Timer.ACCESS_TOKEN_EXPIRY)))
    assert driver.kinds() == [fx.RefreshTokens]
    driver.send(TRANSIENT_REFRESH)
    assert state_of(driver) is State.STREAMING
    assert driver.kinds() == [fx.ScheduleTimer]
    assert driver.machine.context.tokens is not None


@pytest.mark.parametrize("state", [State.AUTHORIZED, State.NEGOTIATING, State.STREAMING])
def test_refresh_rejected_discards_the_grant_and_starts_a_device_flow(state: State) -> None:
    driver = authorized_and_refreshing() if state is State.AUTHORIZED else Driver().walk_to(state)
    driver.send(ev.RefreshRejected())
    assert state_of(driver) is State.UNAUTHORIZED
    assert driver.machine.context.tokens is None
    kinds = driver.kinds()
    assert fx.DiscardTokens in kinds and fx.RequestDeviceCode in kinds
    assert not driver.ledger.sockets_open
    # A call whose media flows is held (protocol.md 3.3); nothing else is open.
    held = {v.peer for v in driver.machine.context.viewers if v.state == SessionState.HELD}
    assert driver.ledger.peers_open == held
    assert bool(held) is (state is State.STREAMING)
    assert driver.ledger.camera_open == int(bool(held))


@pytest.mark.parametrize("state", [State.CONNECTING, State.NEGOTIATING, State.STREAMING])
def test_socket_refused_refreshes_then_reconnects(state: State) -> None:
    driver = Driver().walk_to(state)
    driver.send(ev.SocketRejected(4401))
    assert state_of(driver) is State.AUTHORIZED
    assert fx.RefreshTokens in driver.kinds() and fx.CloseSocket in driver.kinds()
    driver.send(ev.TokensRefreshed(GRANT))
    assert state_of(driver) is State.CONNECTING
    assert driver.kinds()[-1] is fx.OpenSocket


def test_socket_refused_twice_backs_off_before_the_next_refresh() -> None:
    driver = Driver().walk_to(State.CONNECTING)
    driver.send(ev.SocketRejected(403))
    driver.send(ev.TokensRefreshed(GRANT))
    driver.send(ev.SocketRejected(403))
    assert state_of(driver) is State.BACKOFF
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.AUTHORIZED
    assert driver.kinds() == [fx.RefreshTokens]


@pytest.mark.parametrize("state", [State.CONNECTING, State.NEGOTIATING, State.STREAMING])
def test_socket_closed_backs_off_and_reconnects_with_the_same_tokens(state: State) -> None:
    driver = Driver().walk_to(state)
    tokens = driver.machine.context.tokens
    driver.send(ev.SocketClosed(1006, "abnormal"))
    assert state_of(driver) is State.BACKOFF
    assert driver.ledger.all_released is False  # backoff and token timers pending
    assert not driver.ledger.sockets_open
    streaming = state is State.STREAMING
    # The streaming viewer's call is held, with the camera that feeds it.
    assert len(driver.ledger.peers_open) == int(streaming)
    assert driver.ledger.camera_open == int(streaming)
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.CONNECTING
    assert driver.effects[-1] == fx.OpenSocket("device", "access")
    assert driver.machine.context.tokens is tokens


def test_failed_viewer_is_reaped_and_others_keep_streaming() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.OfferReceived("second", "offer"))
    second = driver.machine.context.viewers.get("second")
    assert second is not None
    driver.send(ev.AnswerReady("second", second.peer, "answer"))
    driver.send(ev.PeerConnected("second", second.peer))
    first = driver.machine.context.viewers.get(ev.DEFAULT_SESSION)
    assert first is not None
    driver.send(ev.PeerFailed(ev.DEFAULT_SESSION, first.peer, "ice failed"))
    assert state_of(driver) is State.STREAMING
    assert driver.effects == [
        fx.ClosePeer(ev.DEFAULT_SESSION, first.peer, "peer failed: ice failed")
    ]
    assert set(driver.machine.sessions) == {"second"}
    driver.send(ev.HangupReceived("second"))
    assert state_of(driver) is State.NEGOTIATING
    assert not driver.ledger.peers_open


def test_viewer_that_never_connects_is_reaped_by_its_setup_timer() -> None:
    driver = Driver().walk_to(State.NEGOTIATING)
    driver.send(ev.OfferReceived("slow", "offer"))
    viewer = driver.machine.context.viewers.get("slow")
    assert viewer is not None
    generation = driver.ledger.pending_timers[(Timer.SESSION_SETUP, viewer.peer)]
    driver.send(ev.SessionSetupExpired(generation, "slow", viewer.peer))
    assert driver.machine.sessions == {}
    assert fx.ClosePeer in driver.kinds()


def test_offers_beyond_the_viewer_cap_are_refused() -> None:
    driver = Driver().walk_to(State.NEGOTIATING)
    cap = driver.machine.context.settings.max_viewers
    for index in range(cap + 3):
        driver.advance(1.0)  # below the offer rate limit
        driver.send(ev.OfferReceived(f"viewer-{index}", "offer"))
    assert len(driver.machine.sessions) == cap
    assert driver.machine.counters.refused_offers == 3
    assert driver.kinds() == [fx.ReportProblem]
    assert "viewers already" in driver.problems()[0]


def test_camera_failure_keeps_viewers_connected() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.CameraFailed("unplugged"))
    assert state_of(driver) is State.STREAMING
    assert driver.kinds() == [fx.ReportProblem]
    assert driver.machine.context.camera_online is False
    driver.send(ev.CameraRecovered())
    assert driver.machine.context.camera_online is True


def test_token_store_failure_keeps_running_on_the_tokens_held() -> None:
    driver = Driver().walk_to(State.STREAMING)
    tokens = driver.machine.context.tokens
    driver.send(ev.TokenStoreFailed("disk full"))
    assert state_of(driver) is State.STREAMING
    assert driver.machine.context.tokens is tokens


def test_invalid_message_is_reported_and_unknown_types_once() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.InvalidMessage("missing field 'sdp'", "offer"))
    assert driver.kinds() == [fx.ReportProblem]
    assert state_of(driver) is State.STREAMING
    driver.send(ev.UnknownMessage("ping"))
    assert driver.kinds() == [fx.ReportProblem]
    driver.send(ev.UnknownMessage("ping"))
    assert driver.effects == []


def test_a_refresh_that_lands_during_backoff_is_stored() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.AccessTokenExpiring(driver.timer(Timer.ACCESS_TOKEN_EXPIRY)))
    driver.send(ev.SocketClosed(1011))
    assert state_of(driver) is State.BACKOFF
    rotated = ev.TokenGrant("new-access", "new-refresh", 3600)
    driver.send(ev.TokensRefreshed(rotated))
    stored = [e for e in driver.effects if isinstance(e, fx.StoreTokens)]
    assert stored and stored[0].tokens.refresh_token == "new-refresh"


def test_every_event_in_the_wrong_state_is_counted_not_raised() -> None:
    driver = Driver()
    assert driver.send(ev.SocketOpened()) == []
    assert driver.send(ev.PeerConnected("x", 9)) == []
    assert driver.send(ev.PollDue(123)) == []
    assert state_of(driver) is State.IDLE
    assert driver.machine.counters.ignored["Idle:SocketOpened"] == 1
    assert driver.machine.counters.stale_timers == 1


def test_the_failure_table_lists_every_fault_row() -> None:
    faults = {(rule.fault, rule.leads_to) for rule in FAILURE_TABLE}
    assert ("SocketClosed", "Backoff") in faults
    assert ("SocketRejected", "Authorized") in faults
    assert ("RefreshRejected", "Unauthorized") in faults
    assert ("AccessDenied", "Backoff") in faults
    assert ("DeviceCodeExpired", "Unauthorized") in faults
    assert all(rule.resume for rule in FAILURE_TABLE if rule.leads_to == "Backoff")


def test_a_refresh_answered_after_shutdown_is_still_stored() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.AccessTokenExpiring(driver.timer(Timer.ACCESS_TOKEN_EXPIRY)))
    driver.send(ev.ShutdownRequested())
    assert state_of(driver) is State.STOPPED
    assert driver.ledger.all_released
    driver.send(ev.TokensRefreshed(ev.TokenGrant("late-access", "late-refresh", 3600)))
    assert [type(e) for e in driver.effects] == [fx.StoreTokens]
    assert driver.ledger.all_released


def test_offers_faster_than_the_rate_limit_are_refused_then_allowed_again() -> None:
    driver = Driver().walk_to(State.NEGOTIATING)
    rate = int(driver.machine.context.settings.max_offers_per_second)
    for _ in range(rate + 2):
        driver.send(ev.OfferReceived("same-viewer", "offer"))
    assert driver.machine.counters.refused_offers >= 2
    assert any(isinstance(e, fx.ReportProblem) and "a second" in e.message for e in driver.effects)
    driver.advance(1.0)
    driver.send(ev.OfferReceived("same-viewer", "offer"))
    assert fx.CreatePeer in driver.kinds()


def test_short_lived_access_tokens_still_connect_and_refresh_before_expiry() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.send(ev.TokensGranted(ev.TokenGrant("short", "r", expires_in=45)))
    assert state_of(driver) is State.CONNECTING
    expiry = [d for timer, d in driver.ledger.delays if timer is Timer.ACCESS_TOKEN_EXPIRY]
    assert expiry[-1] == pytest.approx(22.5)


def test_a_refreshed_token_that_is_already_expired_backs_off_instead_of_looping() -> None:
    driver = authorized_and_refreshing()
    driver.send(ev.TokensRefreshed(ev.TokenGrant("dead", "r2", expires_in=0)))
    assert state_of(driver) is State.BACKOFF
    assert fx.StoreTokens in driver.kinds()
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    assert state_of(driver) is State.AUTHORIZED
    assert driver.kinds() == [fx.RefreshTokens]


def test_hangup_and_ice_for_an_unknown_session_are_reported() -> None:
    driver = Driver().walk_to(State.STREAMING)
    driver.send(ev.HangupReceived("nobody"))
    assert state_of(driver) is State.STREAMING
    [problem] = driver.effects
    assert isinstance(problem, fx.ReportProblem)
    assert "'nobody'" in problem.message
    driver.send(ev.RemoteIceCandidate("ghost", None))
    ghost_problem = driver.effects[0]
    assert isinstance(ghost_problem, fx.ReportProblem)
    assert "'ghost'" in ghost_problem.message
    assert driver.machine.counters.ignored["Streaming:HangupReceived"] == 1


def test_a_servers_retry_after_is_honoured_within_the_backoff_cap() -> None:
    driver = Driver().walk_to(State.AWAITING_APPROVAL)
    driver.send(ev.AuthTransientError(ev.AuthOperation.POLL, "429", retry_after=7.0))
    [schedule] = [e for e in driver.effects if isinstance(e, fx.ScheduleTimer)]
    assert schedule.timer is Timer.BACKOFF
    assert schedule.delay >= 7.0
    driver.send(ev.BackoffElapsed(driver.timer(Timer.BACKOFF)))
    driver.send(ev.PollDue(driver.timer(Timer.POLL)))
    driver.send(ev.AuthTransientError(ev.AuthOperation.POLL, "429", retry_after=3600.0))
    [capped] = [e for e in driver.effects if isinstance(e, fx.ScheduleTimer)]
    assert capped.delay == driver.machine.context.settings.backoff.cap
