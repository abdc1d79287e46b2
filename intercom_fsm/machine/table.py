"""The lifecycle's transition table: every rule of the machine, as data.

Rows are tried in order for the current state and event; the first whose guard
holds is taken. ``dest=None`` keeps the state (an internal transition: no exit,
no entry). A row into Backoff names the state to resume when the backoff timer
fires. Events that match no row are counted as ignored, never raised.

The failure rows are the operator's guarantee (README, "Failure behaviour"):
which fault leads where, and what is kept. ``FAILURE_TABLE`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from intercom_fsm import events as ev
from intercom_fsm.machine import actions as act
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Action, Guard, Row, trigger_name
from intercom_fsm.states.base import State

S = State
ONLINE = (S.CONNECTING, S.NEGOTIATING, S.STREAMING)
WITH_VIEWERS = (S.NEGOTIATING, S.STREAMING)
RUNNING = tuple(state for state in State if state is not S.STOPPED)
AFTER_START = tuple(state for state in RUNNING if state is not S.IDLE)
RESUMABLE = (S.UNAUTHORIZED, S.AWAITING_APPROVAL, S.AUTHORIZED)
GRANT_HELD = (S.AUTHORIZED, *ONLINE, S.BACKOFF)
"""States that may hold a grant (Backoff only when it resumes Authorized)."""

# Session events first go to the viewer's own machine; these rows only let the
# lifecycle follow the aggregate (Streaming exactly while a viewer streams).
SESSION_ENDINGS: tuple[type[ev.Event], ...] = (
    ev.OfferReceived,
    ev.HangupReceived,
    ev.PeerFailed,
    ev.PeerClosed,
    ev.SessionSetupExpired,
)
SESSION_UPDATES: tuple[type[ev.Event], ...] = (
    ev.RemoteIceCandidate,
    ev.AnswerReady,
    ev.LocalIceCandidate,
)


@attrs.frozen
class Rule:
    """One row of the table before it is expanded for the ``transitions``
    library: a failure rule also records where Backoff resumes."""

    row: Row[Context]
    resume: State | None = None


def on(
    sources: State | Iterable[State],
    event: type[ev.Event] | None,
    dest: State | None,
    reason: str,
    *,
    when: Guard[Context] | None = None,
    do: Iterable[Action[Context]] | Action[Context] = (),
    resume: State | None = None,
) -> Rule:
    source_tuple = (sources,) if isinstance(sources, State) else tuple(sources)
    do_tuple: tuple[Any, ...] = tuple(do) if isinstance(do, Iterable) else (do,)
    if resume is not None:
        do_tuple = (act.set_resume(resume), *do_tuple)
    row: Row[Context] = Row(
        sources=tuple(s.value for s in source_tuple),
        trigger=trigger_name(event),
        dest=None if dest is None else dest.value,
        reason=reason,
        guard=when,
        actions=do_tuple,
    )
    return Rule(row, resume)


RULES: tuple[Rule, ...] = (
    # --- start -------------------------------------------------------------------------
    on(S.IDLE, ev.Started, S.AUTHORIZED, "stored grant found",
       when=act.HAS_STORED_GRANT, do=act.adopt_stored_grant),
    on(S.IDLE, ev.Started, S.UNAUTHORIZED, "no stored grant: device flow"),
    # --- device flow (protocol.md 1.1, 1.2) -------------------------------------------
    on(S.UNAUTHORIZED, ev.DeviceCodeIssued, S.AWAITING_APPROVAL, "user code issued",
       do=act.begin_flow),
    on(S.UNAUTHORIZED, ev.AuthTransientError, S.BACKOFF, "device authorization failed",
       when=act.DEVICE_AUTHORIZATION_FAILED, do=act.note_retry_after, resume=S.UNAUTHORIZED),
    on(S.AWAITING_APPROVAL, ev.PollDue, S.UNAUTHORIZED, "device code expired locally: new flow",
       when=act.FLOW_EXPIRED),
    on(S.AWAITING_APPROVAL, ev.PollDue, None, "poll the token endpoint", do=act.poll_token),
    on(S.AWAITING_APPROVAL, ev.AuthorizationPending, None, "authorization pending",
       do=act.schedule_next_poll),
    on(S.AWAITING_APPROVAL, ev.SlowDown, None, "slow_down: poll interval +5 s",
       do=act.slow_down),
    on(S.AWAITING_APPROVAL, ev.AccessDenied, S.BACKOFF, "denied: new flow after backoff",
       do=act.report_denied, resume=S.UNAUTHORIZED),
    on(S.AWAITING_APPROVAL, ev.DeviceCodeExpired, S.UNAUTHORIZED, "device code expired: new flow"),
    on(S.AWAITING_APPROVAL, ev.TokensGranted, S.AUTHORIZED, "approved: tokens stored",
       do=act.adopt_grant),
    on(S.AWAITING_APPROVAL, ev.AuthTransientError, S.BACKOFF, "poll failed: flow kept",
       when=act.POLL_FAILED, do=act.note_retry_after, resume=S.AWAITING_APPROVAL),
    # --- grant held (protocol.md 1.3) ------------------------------------------------
    on(S.AUTHORIZED, None, S.CONNECTING, "access token fresh", when=act.TOKEN_FRESH),
    on(S.AUTHORIZED, ev.AuthTransientError, S.BACKOFF, "refresh failed: tokens kept",
       when=act.REFRESH_FAILED, do=act.note_retry_after, resume=S.AUTHORIZED),
    on(ONLINE, ev.AccessTokenExpiring, None, "refresh before expiry",
       do=act.refresh_in_background),
    on(ONLINE, ev.AuthTransientError, None, "refresh failed: tokens kept, retry later",
       when=act.REFRESH_FAILED, do=(act.note_retry_after, act.retry_refresh_later)),
    on(S.AUTHORIZED, ev.TokensRefreshed, S.BACKOFF, "refreshed token already expired: retry",
       when=act.REFRESHED_TOKEN_UNUSABLE, do=act.store_refreshed, resume=S.AUTHORIZED),
    on(GRANT_HELD, ev.TokensRefreshed, None, "access token refreshed",
       when=act.HAS_GRANT, do=act.store_refreshed),
    on(S.STOPPED, ev.TokensRefreshed, None, "refresh answered after shutdown: stored",
       when=act.HAS_GRANT, do=act.store_late_refresh),
    on(GRANT_HELD, ev.RefreshRejected, S.UNAUTHORIZED, "grant rejected: new device flow",
       when=act.HAS_GRANT, do=act.discard_grant),
    # --- signaling (protocol.md 2) ----------------------------------------------------
    on(S.CONNECTING, ev.SocketOpened, S.NEGOTIATING, "socket open", do=act.note_online),
    on(ONLINE, ev.SocketRejected, S.AUTHORIZED, "access token refused: refresh",
       when=act.FIRST_REFUSAL, do=act.note_refusal),
    on(ONLINE, ev.SocketRejected, S.BACKOFF, "access token refused again",
       do=act.note_refusal, resume=S.AUTHORIZED),
    on(ONLINE, ev.SocketClosed, S.BACKOFF, "socket closed: reconnect after backoff",
       resume=S.AUTHORIZED),
    # --- viewers ----------------------------------------------------------------------
    on(S.NEGOTIATING, ev.PeerConnected, S.STREAMING, "a viewer receives media",
       when=act.VIEWER_STREAMING, do=act.count_peer_connected),
    on(S.STREAMING, ev.PeerConnected, None, "another viewer receives media",
       do=act.count_peer_connected),
    *(on(S.STREAMING, event, S.NEGOTIATING, "no viewer receives media",
         when=act.NO_VIEWER_STREAMING) for event in SESSION_ENDINGS),
    *(on(WITH_VIEWERS, event, None, "viewer session event")
      for event in (*SESSION_ENDINGS, *SESSION_UPDATES)),
    # --- backoff ----------------------------------------------------------------------
    *(on(S.BACKOFF, ev.BackoffElapsed, state, "backoff elapsed", when=act.RESUME_IS[state])
      for state in RESUMABLE),
    # --- anywhere ---------------------------------------------------------------------
    on(RUNNING, ev.ShutdownRequested, S.STOPPED, "shutdown requested"),
    on(AFTER_START, ev.LogoutRequested, S.UNAUTHORIZED, "logout: grant discarded",
       do=act.discard_grant),
    *(on(RUNNING, event, None, "camera status", do=act.note_camera)
      for event in (ev.CameraOpened, ev.CameraFailed, ev.CameraRecovered)),
    on(RUNNING, ev.TokenStoreFailed, None, "token file not written: tokens held in memory",
       do=act.report_store_failure),
    on(ONLINE, ev.InvalidMessage, None, "malformed signaling message dropped",
       do=act.report_invalid_message),
    on(ONLINE, ev.UnknownMessage, None, "unknown signaling message ignored",
       do=act.report_unknown_once),
)  # fmt: skip

LIFECYCLE_TABLE: tuple[Row[Context], ...] = tuple(rule.row for rule in RULES)

FAILURE_EVENTS: tuple[type[ev.Event], ...] = (
    ev.AuthTransientError,
    ev.AccessDenied,
    ev.DeviceCodeExpired,
    ev.RefreshRejected,
    ev.SocketRejected,
    ev.SocketClosed,
    ev.PeerFailed,
    ev.CameraFailed,
    ev.TokenStoreFailed,
    ev.InvalidMessage,
)


@attrs.frozen
class FailureRule:
    sources: tuple[str, ...]
    fault: str
    guard: str | None
    leads_to: str
    resume: str | None
    reason: str


FAILURE_TABLE: tuple[FailureRule, ...] = tuple(
    FailureRule(
        sources=rule.row.sources,
        fault=rule.row.trigger,
        guard=rule.row.guard.label if rule.row.guard else None,
        leads_to=rule.row.dest or "(stays)",
        resume=rule.resume.value if rule.resume else None,
        reason=rule.row.reason,
    )
    for rule in RULES
    if rule.row.trigger in {trigger_name(event) for event in FAILURE_EVENTS}
)
"""Which fault leads where: the rows of the table whose event is a failure."""
