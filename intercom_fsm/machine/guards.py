"""The lifecycle's named guards: pure questions about the context and the event.

The table (``intercom_fsm.machine.table``) names them; the diagrams print
their labels in brackets.
"""

from __future__ import annotations

from typing import Any

from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.events import AuthOperation
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Guard
from intercom_fsm.states.base import State

TIMER_OF: dict[type[Any], Timer] = {
    ev.PollDue: Timer.POLL,
    ev.BackoffElapsed: Timer.BACKOFF,
    ev.AccessTokenExpiring: Timer.ACCESS_TOKEN_EXPIRY,
    ev.FlowExpiryDue: Timer.FLOW_EXPIRY,
    ev.OrphanGraceElapsed: Timer.ORPHAN_GRACE,
    ev.SessionSetupExpired: Timer.SESSION_SETUP,
}
"""Which timer fires which event."""


def timer_key_of(event: ev.TimerEvent) -> tuple[Timer, int | None]:
    return TIMER_OF[type(event)], getattr(event, "peer", None)


def _timer_current(ctx: Context, event: ev.TimerEvent) -> bool:
    timer, peer = timer_key_of(event)
    return ctx.timer_is_current(timer, event.generation, peer)


def _has_stored_grant(ctx: Context, event: ev.Started) -> bool:
    return event.tokens is not None


def _token_fresh(ctx: Context, _event: object) -> bool:
    return ctx.access_token_fresh()


def _refreshed_token_unusable(ctx: Context, event: ev.TokensRefreshed) -> bool:
    # A token that is stale the moment it arrives (a lifetime of zero, a
    # clock far off): waiting a backoff beats refreshing in a tight loop.
    return ctx.tokens is not None and event.grant.expires_in <= 0


def _has_grant(ctx: Context, _event: object) -> bool:
    return ctx.tokens is not None


def _first_refusal(ctx: Context, _event: object) -> bool:
    stable = ctx.settings.backoff.stable_after
    if ctx.online_since is not None and ctx.monotonic() - ctx.online_since >= stable:
        return True
    return ctx.sockets_refused_in_a_row == 0


def _viewer_streaming(ctx: Context, _event: object) -> bool:
    return ctx.viewers.streaming_count() > 0


def _no_viewer_streaming(ctx: Context, _event: object) -> bool:
    return ctx.viewers.streaming_count() == 0


def _session_known(ctx: Context, event: Any) -> bool:
    return ctx.viewers.get(event.session) is not None


def _media_unused(ctx: Context, _event: object) -> bool:
    return ctx.media_open and len(ctx.viewers) == 0


def _operation_is(operation: AuthOperation) -> Guard[Context]:
    def test(_ctx: Context, event: ev.AuthTransientError | ev.ClientRejected) -> bool:
        return event.operation is operation

    return Guard(f"{operation.value} failed", test)


def _poll_timed_out(_ctx: Context, event: ev.AuthTransientError) -> bool:
    return event.operation is AuthOperation.POLL and event.timed_out


def _resume_is(state: State) -> Guard[Context]:
    def test(ctx: Context, _event: object) -> bool:
        return ctx.resume is state

    return Guard(f"resume {state.value}", test)


TIMER_CURRENT = Guard("current timer", _timer_current)
HAS_STORED_GRANT = Guard("stored grant", _has_stored_grant)
TOKEN_FRESH = Guard("access token fresh", _token_fresh)
HAS_GRANT = Guard("grant held", _has_grant)
REFRESHED_TOKEN_UNUSABLE = Guard("refreshed token already expired", _refreshed_token_unusable)
FIRST_REFUSAL = Guard("first refusal", _first_refusal)
VIEWER_STREAMING = Guard("a viewer streams", _viewer_streaming)
NO_VIEWER_STREAMING = Guard("no viewer streams", _no_viewer_streaming)
SESSION_KNOWN = Guard("known session", _session_known)
MEDIA_UNUSED = Guard("no call holds media", _media_unused)
POLL_TIMED_OUT = Guard("poll timed out", _poll_timed_out)
DEVICE_AUTHORIZATION_FAILED = _operation_is(AuthOperation.DEVICE_AUTHORIZATION)
POLL_FAILED = _operation_is(AuthOperation.POLL)
REFRESH_FAILED = _operation_is(AuthOperation.REFRESH)
RESUME_IS = {state: _resume_is(state) for state in State}


def rejected_on(operation: AuthOperation) -> Guard[Context]:
    def test(_ctx: Context, event: ev.ClientRejected) -> bool:
        return event.operation is operation

    return Guard(f"on {operation.value}", test)


CLIENT_REJECTED_ON_REFRESH = rejected_on(AuthOperation.REFRESH)
