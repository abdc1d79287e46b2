"""The lifecycle's named actions for the grant: the device flow and the tokens.

Each action is a short function of the context and the event, named after what
it asks for; the table (``intercom_fsm.machine.table``) says when it runs. The
actions of the online part (socket, viewers, camera and audio) are in
``intercom_fsm.machine.online``.
"""

from __future__ import annotations

from intercom_fsm import events as ev
from intercom_fsm.effects import DiscardTokens, PollToken, ShowUserCode, StoreTokens, Timer
from intercom_fsm.events import AuthOperation, StoredTokens, TokenGrant
from intercom_fsm.machine.context import Context, DeviceFlow
from intercom_fsm.machine.guards import timer_key_of
from intercom_fsm.states.base import State

MIN_POLL_INTERVAL = 1.0

# --- bookkeeping that many rows share -----------------------------------------------


def consume_timer(ctx: Context, event: ev.TimerEvent) -> None:
    ctx.timer_fired(*timer_key_of(event))


def count_stale_timer(ctx: Context, _event: object) -> None:
    ctx.counters.stale_timers += 1


def count_ignored(ctx: Context, event: object) -> None:
    ctx.counters.ignored[f"{ctx.state}:{type(event).__name__}"] += 1


def settle_refresh(ctx: Context, event: object) -> None:
    """Whatever state the answer lands in, a refresh is no longer under way."""
    operation = getattr(event, "operation", AuthOperation.REFRESH)
    if operation is AuthOperation.REFRESH:
        ctx.refresh_in_flight = False


def set_resume(state: State) -> object:
    def resume_at(ctx: Context, _event: object) -> None:
        ctx.resume = state

    resume_at.__name__ = f"resume_{state.name.lower()}"
    return resume_at


# --- start ------------------------------------------------------------------------


def adopt_stored_grant(ctx: Context, event: ev.Started) -> None:
    ctx.tokens = event.tokens
    ctx.schedule_token_expiry()


# --- the device flow ----------------------------------------------------------------


def begin_flow(ctx: Context, event: ev.DeviceCodeIssued) -> None:
    ctx.flow = DeviceFlow(
        device_code=event.device_code,
        user_code=event.user_code,
        # A server that says 0 would have the device poll in a tight loop.
        interval=max(event.interval, MIN_POLL_INTERVAL),
        expires_at=ctx.monotonic() + event.expires_in,
    )
    ctx.emit(
        ShowUserCode(
            user_code=event.user_code,
            verification_uri=event.verification_uri,
            verification_uri_complete=event.verification_uri_complete,
            expires_in=event.expires_in,
        )
    )
    # A code issued is a success of the device authorization endpoint, but
    # after a denial the person said no: the wait keeps growing across
    # denials until a grant.
    if ctx.flows_refused_in_a_row == 0:
        ctx.backoff.succeeded(ctx.monotonic())


def poll_token(ctx: Context, _event: object) -> None:
    assert ctx.flow is not None
    ctx.emit(PollToken(ctx.flow.device_code))


def schedule_next_poll(ctx: Context, _event: object) -> None:
    assert ctx.flow is not None
    ctx.schedule(Timer.POLL, ctx.flow.interval)


def slow_down(ctx: Context, event: object) -> None:
    assert ctx.flow is not None
    ctx.flow.interval += ctx.settings.slow_down_step
    schedule_next_poll(ctx, event)


def poll_less_often(ctx: Context, event: ev.AuthTransientError) -> None:
    """RFC 8628 section 3.5: a poll that timed out doubles the interval."""
    assert ctx.flow is not None
    ctx.flow.interval = min(ctx.settings.max_poll_interval, ctx.flow.interval * 2)
    ctx.report("poll_timeout", f"polling the token endpoint every {ctx.flow.interval:g} s now")
    schedule_next_poll(ctx, event)


def forget_flow(ctx: Context, _event: object) -> None:
    ctx.flow = None


def report_denied(ctx: Context, event: ev.AccessDenied) -> None:
    detail = f": {event.description}" if event.description else ""
    ctx.report("access_denied", f"authorization was denied{detail}; a new flow follows the backoff")
    ctx.retry_after = ctx.settings.denial_pause
    ctx.flows_refused_in_a_row += 1
    ctx.flow = None


def report_flow_failed(ctx: Context, event: ev.DeviceFlowFailed) -> None:
    detail = f" ({event.description})" if event.description else ""
    ctx.report(
        "device_flow_failed",
        f"the token endpoint ended the device flow: {event.error}{detail};"
        " a new flow follows the backoff",
    )
    ctx.flows_refused_in_a_row += 1
    ctx.flow = None


def report_client_rejected(ctx: Context, event: ev.ClientRejected) -> None:
    detail = f" ({event.description})" if event.description else ""
    pause = ctx.settings.client_rejected_pause
    ctx.report(
        "client_rejected",
        f"the backend rejected this client on {event.operation.value}: {event.error}{detail}."
        " Check OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET;"
        f" trying again in {pause:g} s",
    )
    ctx.pause = pause


def retry_refresh_after_pause(ctx: Context, _event: object) -> None:
    # Online, the socket still works with the access token it has.
    ctx.pause = None
    ctx.schedule(Timer.ACCESS_TOKEN_EXPIRY, ctx.settings.client_rejected_pause)


# --- the grant ----------------------------------------------------------------------


def _adopt(ctx: Context, grant: TokenGrant, device_code: str) -> None:
    ctx.tokens = StoredTokens(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=ctx.clock() + grant.expires_in,
        device_code=device_code,
    )
    ctx.token_lifetime = grant.expires_in
    ctx.token_refused = False
    ctx.emit(StoreTokens(ctx.tokens))
    ctx.schedule_token_expiry()
    ctx.backoff.succeeded(ctx.monotonic())


def adopt_grant(ctx: Context, event: ev.TokensGranted) -> None:
    assert ctx.flow is not None
    _adopt(ctx, event.grant, ctx.flow.device_code)
    ctx.flows_refused_in_a_row = 0
    ctx.flow = None


def store_refreshed(ctx: Context, event: ev.TokensRefreshed) -> None:
    assert ctx.tokens is not None
    _adopt(ctx, event.grant, ctx.tokens.device_code)


def store_late_refresh(ctx: Context, event: ev.TokensRefreshed) -> None:
    # The server may already have rotated the refresh token: losing this
    # answer would lose the grant. Stored, but no timer: the machine is done.
    assert ctx.tokens is not None
    ctx.tokens = StoredTokens(
        access_token=event.grant.access_token,
        refresh_token=event.grant.refresh_token,
        expires_at=ctx.clock() + event.grant.expires_in,
        device_code=ctx.tokens.device_code,
    )
    ctx.emit(StoreTokens(ctx.tokens))


def discard_grant(ctx: Context, event: object) -> None:
    reason = "logout" if isinstance(event, ev.LogoutRequested) else "refresh rejected"
    ctx.tokens = None
    ctx.token_refused = False
    ctx.cancel(Timer.ACCESS_TOKEN_EXPIRY)
    ctx.emit(DiscardTokens(reason))


def refresh_in_background(ctx: Context, _event: object) -> None:
    ctx.request_refresh()


def note_retry_after(ctx: Context, event: ev.AuthTransientError) -> None:
    ctx.retry_after = event.retry_after


def retry_refresh_later(ctx: Context, _event: object) -> None:
    # Online, the socket still works with the old access token: keep streaming
    # and try again after a backoff delay rather than dropping viewers.
    ctx.schedule(Timer.ACCESS_TOKEN_EXPIRY, ctx.retry_delay())


def report_store_failure(ctx: Context, event: ev.TokenStoreFailed) -> None:
    ctx.report("token_store", f"tokens not saved, running on the tokens held: {event.reason}")
