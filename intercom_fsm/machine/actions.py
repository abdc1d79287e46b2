"""The lifecycle's named guards and actions.

Each action is a short function of the context and the event, named after what
it asks for; the table in ``intercom_fsm.machine.table`` says when it runs.
"""

from __future__ import annotations

from intercom_fsm.effects import (
    DiscardTokens,
    PollToken,
    ReportProblem,
    ShowUserCode,
    StoreTokens,
    Timer,
)
from intercom_fsm.events import (
    AccessDenied,
    AuthOperation,
    AuthTransientError,
    CameraFailed,
    CameraOpened,
    CameraRecovered,
    DeviceCodeIssued,
    InvalidMessage,
    Started,
    StoredTokens,
    TokenGrant,
    TokensGranted,
    TokensRefreshed,
    TokenStoreFailed,
    UnknownMessage,
)
from intercom_fsm.machine.context import Context, DeviceFlow
from intercom_fsm.machine.rows import Guard
from intercom_fsm.states.base import State

MIN_POLL_INTERVAL = 1.0

# --- guards -----------------------------------------------------------------------


def _has_stored_grant(ctx: Context, event: Started) -> bool:
    return event.tokens is not None


def _flow_expired(ctx: Context, _event: object) -> bool:
    return ctx.flow is None or ctx.clock() >= ctx.flow.expires_at


def _token_fresh(ctx: Context, _event: object) -> bool:
    return ctx.access_token_fresh()


def _refreshed_token_unusable(ctx: Context, event: TokensRefreshed) -> bool:
    # A token that is stale the moment it arrives (a lifetime of zero, a
    # clock far off): waiting a backoff beats refreshing in a tight loop.
    return ctx.tokens is not None and event.grant.expires_in <= 0


def _has_grant(ctx: Context, _event: object) -> bool:
    return ctx.tokens is not None


def _first_refusal(ctx: Context, _event: object) -> bool:
    return ctx.sockets_refused_in_a_row == 0


def _viewer_streaming(ctx: Context, _event: object) -> bool:
    return ctx.viewers.streaming_count() > 0


def _no_viewer_streaming(ctx: Context, _event: object) -> bool:
    return ctx.viewers.streaming_count() == 0


def _operation_is(operation: AuthOperation) -> Guard[Context]:
    def test(_ctx: Context, event: AuthTransientError) -> bool:
        return event.operation is operation

    return Guard(f"{operation.value} failed", test)


def _resume_is(state: State) -> Guard[Context]:
    def test(ctx: Context, _event: object) -> bool:
        return ctx.resume is state

    return Guard(f"resume {state.value}", test)


HAS_STORED_GRANT = Guard("stored grant", _has_stored_grant)
FLOW_EXPIRED = Guard("flow expired", _flow_expired)
TOKEN_FRESH = Guard("access token fresh", _token_fresh)
HAS_GRANT = Guard("grant held", _has_grant)
REFRESHED_TOKEN_UNUSABLE = Guard("refreshed token already expired", _refreshed_token_unusable)
FIRST_REFUSAL = Guard("first refusal", _first_refusal)
VIEWER_STREAMING = Guard("a viewer streams", _viewer_streaming)
NO_VIEWER_STREAMING = Guard("no viewer streams", _no_viewer_streaming)
DEVICE_AUTHORIZATION_FAILED = _operation_is(AuthOperation.DEVICE_AUTHORIZATION)
POLL_FAILED = _operation_is(AuthOperation.POLL)
REFRESH_FAILED = _operation_is(AuthOperation.REFRESH)
RESUME_IS = {state: _resume_is(state) for state in State}

# --- actions ----------------------------------------------------------------------


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
    ctx.backoff.succeeded(ctx.clock())


def adopt_stored_grant(ctx: Context, event: Started) -> None:
    ctx.tokens = event.tokens
    ctx.schedule_token_expiry()


def begin_flow(ctx: Context, event: DeviceCodeIssued) -> None:
    ctx.flow = DeviceFlow(
        device_code=event.device_code,
        user_code=event.user_code,
        # A server that says 0 would have the device poll in a tight loop.
        interval=max(event.interval, MIN_POLL_INTERVAL),
        expires_at=ctx.clock() + event.expires_in,
    )
    ctx.emit(
        ShowUserCode(
            user_code=event.user_code,
            verification_uri=event.verification_uri,
            verification_uri_complete=event.verification_uri_complete,
            expires_in=event.expires_in,
        )
    )
    ctx.backoff.succeeded(ctx.clock())


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


def report_denied(ctx: Context, event: AccessDenied) -> None:
    detail = f": {event.description}" if event.description else ""
    ctx.emit(ReportProblem(f"authorization was denied{detail}; a new flow follows the backoff"))
    ctx.flow = None


def adopt_grant(ctx: Context, event: TokensGranted) -> None:
    assert ctx.flow is not None
    _adopt(ctx, event.grant, ctx.flow.device_code)
    ctx.flow = None


def store_refreshed(ctx: Context, event: TokensRefreshed) -> None:
    assert ctx.tokens is not None
    _adopt(ctx, event.grant, ctx.tokens.device_code)


def store_late_refresh(ctx: Context, event: TokensRefreshed) -> None:
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
    reason = "logout" if type(event).__name__ == "LogoutRequested" else "refresh rejected"
    ctx.tokens = None
    ctx.token_refused = False
    ctx.emit(DiscardTokens(reason))


def refresh_in_background(ctx: Context, _event: object) -> None:
    ctx.request_refresh()


def note_retry_after(ctx: Context, event: AuthTransientError) -> None:
    ctx.retry_after = event.retry_after


def retry_refresh_later(ctx: Context, _event: object) -> None:
    # Online, the socket still works with the old access token: keep streaming
    # and try again after a backoff delay rather than dropping viewers.
    ctx.schedule(Timer.ACCESS_TOKEN_EXPIRY, ctx.retry_delay())


def note_online(ctx: Context, _event: object) -> None:
    ctx.online_since = ctx.clock()
    ctx.backoff.succeeded(ctx.clock())


def note_refusal(ctx: Context, _event: object) -> None:
    stable = ctx.settings.backoff.stable_after
    if ctx.online_since is not None and ctx.clock() - ctx.online_since >= stable:
        ctx.sockets_refused_in_a_row = 0
    ctx.sockets_refused_in_a_row += 1
    ctx.token_refused = True


def count_peer_connected(ctx: Context, _event: object) -> None:
    ctx.sockets_refused_in_a_row = 0


def note_camera(ctx: Context, event: CameraOpened | CameraFailed | CameraRecovered) -> None:
    if isinstance(event, CameraFailed):
        ctx.camera_online = False
        ctx.emit(ReportProblem(f"camera offline: {event.reason}"))
    else:
        ctx.camera_online = True


def report_store_failure(ctx: Context, event: TokenStoreFailed) -> None:
    ctx.emit(ReportProblem(f"tokens not saved, running on the tokens held: {event.reason}"))


def report_invalid_message(ctx: Context, event: InvalidMessage) -> None:
    kind = f"{event.message_type!r} message" if event.message_type else "message"
    ctx.emit(ReportProblem(f"dropped signaling {kind}: {event.problem}"))


def report_unknown_once(ctx: Context, event: UnknownMessage) -> None:
    if event.message_type not in ctx.unknown_types_reported:
        ctx.unknown_types_reported.add(event.message_type)
        ctx.emit(
            ReportProblem(f"ignoring signaling messages of unknown type {event.message_type!r}")
        )


def set_resume(state: State) -> object:
    def resume_at(ctx: Context, _event: object) -> None:
        ctx.resume = state

    resume_at.__name__ = f"resume_{state.name.lower()}"
    return resume_at
