"""The lifecycle's transition table: every rule of the machine, as data.

Rows are tried in order for the current state and event; the first whose guard
holds is taken (the ``transitions`` library does this: each row is one of its
transitions). ``dest=None`` keeps the state (an internal transition: no exit,
no entry). A row into Backoff names the state to resume when the backoff timer
fires. An event that matches no row is counted as ignored, never raised.

Three kinds of rows frame the rest:

* a timer's event that is not the pending one is stale: the first rows drop
  it; every row that takes a current timer's event consumes the timer;
* an answer to a refresh settles it, whatever state it lands in;
* the last rows catch what is left of those (a timer or an answer with
  nothing to do in this state) and count it as ignored.

The failure rows are the operator's guarantee (README, "Failure behaviour"):
which fault leads where, and what is kept. ``FAILURE_TABLE`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from intercom_fsm import events as ev
from intercom_fsm.machine import actions as act
from intercom_fsm.machine import guards as when
from intercom_fsm.machine import online
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Action, Guard, Row, trigger_name
from intercom_fsm.states.base import State

S = State
EVERY_STATE = tuple(State)
RUNNING = tuple(state for state in State if state is not S.STOPPED)
AFTER_START = tuple(state for state in RUNNING if state is not S.IDLE)
ONLINE = (S.CONNECTING, S.NEGOTIATING, S.STREAMING)
SOCKET_OPEN = (S.NEGOTIATING, S.STREAMING)
OFFLINE = (S.UNAUTHORIZED, S.AWAITING_APPROVAL, S.AUTHORIZED, S.CONNECTING, S.BACKOFF)
"""States without an open socket in which calls may still be held."""
RESUMABLE = (S.UNAUTHORIZED, S.AWAITING_APPROVAL, S.AUTHORIZED)
GRANT_HELD = (S.AUTHORIZED, *ONLINE, S.BACKOFF)
"""States that may hold a grant (Backoff only when it resumes Authorized)."""
REFRESH_ANSWERS = (ev.TokensRefreshed, ev.RefreshRejected, ev.AuthTransientError, ev.ClientRejected)
DEVICE_EVENTS: tuple[tuple[str, Action[Context], tuple[type[Any], ...]], ...] = (
    ("camera", online.note_camera, (ev.CameraOpened, ev.CameraFailed, ev.CameraRecovered)),
    ("microphone", online.note_microphone,
     (ev.MicrophoneOpened, ev.MicrophoneFailed, ev.MicrophoneRecovered)),
    ("speaker", online.note_speaker, (ev.SpeakerOpened, ev.SpeakerFailed, ev.SpeakerRecovered)),
)  # fmt: skip


@attrs.frozen
class Rule:
    """One row of the table; a failure rule also records where Backoff resumes."""

    row: Row[Context]
    resume: State | None = None
    framing: bool = False
    """One of the rows that frame the rest (stale timers, what is left)."""


def on(
    sources: State | Iterable[State],
    event: type[Any] | None,
    dest: State | None,
    reason: str,
    *,
    when: Guard[Context] | None = None,
    do: Iterable[Action[Context]] | Action[Context] = (),
    resume: State | None = None,
    framing: bool = False,
) -> Rule:
    source_tuple = (sources,) if isinstance(sources, State) else tuple(sources)
    do_tuple: tuple[Any, ...] = tuple(do) if isinstance(do, Iterable) else (do,)
    if resume is not None:
        do_tuple = (*do_tuple, act.set_resume(resume))
    row: Row[Context] = Row(
        sources=tuple(s.value for s in source_tuple),
        trigger=trigger_name(event),
        dest=None if dest is None else dest.value,
        reason=reason,
        guard=when,
        actions=do_tuple,
    )
    return Rule(row, resume, framing)


RULES: tuple[Rule, ...] = (
    # --- stale timers first: a cancelled or replaced timer's late event ---------------
    *(on(EVERY_STATE, timer, None, "stale timer dropped",
         when=when.TIMER_CURRENT.negated(), do=act.count_stale_timer, framing=True)
      for timer in ev.TIMER_EVENTS),
    # --- start -------------------------------------------------------------------------
    on(S.IDLE, ev.Started, S.AUTHORIZED, "stored grant found",
       when=when.HAS_STORED_GRANT, do=act.adopt_stored_grant),
    on(S.IDLE, ev.Started, S.UNAUTHORIZED, "no stored grant: device flow"),
    # --- device flow (protocol.md 1.1, 1.2; RFC 8628) --------------------------------
    on(S.UNAUTHORIZED, ev.DeviceCodeIssued, S.AWAITING_APPROVAL, "user code issued",
       do=act.begin_flow),
    on(S.UNAUTHORIZED, ev.AuthTransientError, S.BACKOFF, "device authorization failed",
       when=when.DEVICE_AUTHORIZATION_FAILED, do=act.note_retry_after, resume=S.UNAUTHORIZED),
    on((S.UNAUTHORIZED, S.AWAITING_APPROVAL), ev.ClientRejected, S.BACKOFF,
       "client rejected: configuration error, long pause",
       do=(act.report_client_rejected, act.forget_flow), resume=S.UNAUTHORIZED),
    on(S.AWAITING_APPROVAL, ev.PollDue, None, "poll the token endpoint",
       do=(act.consume_timer, act.poll_token)),
    on(S.AWAITING_APPROVAL, ev.AuthorizationPending, None, "authorization pending",
       do=act.schedule_next_poll),
    on(S.AWAITING_APPROVAL, ev.SlowDown, None, "slow_down: poll interval +5 s",
       do=act.slow_down),
    on(S.AWAITING_APPROVAL, ev.AuthTransientError, None, "poll timed out: poll less often",
       when=when.POLL_TIMED_OUT, do=act.poll_less_often),
    on(S.AWAITING_APPROVAL, ev.AuthTransientError, S.BACKOFF, "poll failed: flow kept",
       when=when.POLL_FAILED, do=act.note_retry_after, resume=S.AWAITING_APPROVAL),
    on(S.AWAITING_APPROVAL, ev.AccessDenied, S.BACKOFF, "denied: new flow after backoff",
       do=act.report_denied, resume=S.UNAUTHORIZED),
    on(S.AWAITING_APPROVAL, ev.DeviceFlowFailed, S.BACKOFF, "flow ended by the server",
       do=act.report_flow_failed, resume=S.UNAUTHORIZED),
    on(S.AWAITING_APPROVAL, ev.DeviceCodeExpired, S.UNAUTHORIZED, "device code expired: new flow"),
    on(S.AWAITING_APPROVAL, ev.FlowExpiryDue, S.UNAUTHORIZED,
       "device code expired locally: new flow", do=act.consume_timer),
    on(S.AWAITING_APPROVAL, ev.TokensGranted, S.AUTHORIZED, "approved: tokens stored",
       do=act.adopt_grant),
    # --- grant held (protocol.md 1.3) ------------------------------------------------
    on(S.AUTHORIZED, None, S.CONNECTING, "access token fresh", when=when.TOKEN_FRESH),
    on(S.AUTHORIZED, ev.AuthTransientError, S.BACKOFF, "refresh failed: tokens kept",
       when=when.REFRESH_FAILED, do=(act.settle_refresh, act.note_retry_after),
       resume=S.AUTHORIZED),
    on(S.AUTHORIZED, ev.ClientRejected, S.BACKOFF, "client rejected: tokens kept, long pause",
       do=(act.settle_refresh, act.report_client_rejected), resume=S.AUTHORIZED),
    on(ONLINE, ev.AccessTokenExpiring, None, "refresh before expiry",
       do=(act.consume_timer, act.refresh_in_background)),
    on(ONLINE, ev.AuthTransientError, None, "refresh failed: tokens kept, retry later",
       when=when.REFRESH_FAILED,
       do=(act.settle_refresh, act.note_retry_after, act.retry_refresh_later)),
    on(ONLINE, ev.ClientRejected, None, "client rejected: tokens kept, retry after a pause",
       when=when.CLIENT_REJECTED_ON_REFRESH,
       do=(act.settle_refresh, act.report_client_rejected, act.retry_refresh_after_pause)),
    on(S.AUTHORIZED, ev.TokensRefreshed, S.BACKOFF, "refreshed token already expired: retry",
       when=when.REFRESHED_TOKEN_UNUSABLE, do=(act.settle_refresh, act.store_refreshed),
       resume=S.AUTHORIZED),
    on(GRANT_HELD, ev.TokensRefreshed, None, "access token refreshed",
       when=when.HAS_GRANT, do=(act.settle_refresh, act.store_refreshed)),
    on(S.STOPPED, ev.TokensRefreshed, None, "refresh answered after shutdown: stored",
       when=when.HAS_GRANT, do=(act.settle_refresh, act.store_late_refresh)),
    on(GRANT_HELD, ev.RefreshRejected, S.UNAUTHORIZED,
       "grant rejected: new device flow, calls held",
       when=when.HAS_GRANT, do=(act.settle_refresh, act.discard_grant, online.go_offline)),
    # --- signaling (protocol.md 2) ----------------------------------------------------
    on(S.CONNECTING, ev.SocketOpened, S.NEGOTIATING, "socket open", do=online.note_online),
    on(ONLINE, ev.SocketRejected, S.AUTHORIZED, "access token refused: refresh, calls held",
       when=when.FIRST_REFUSAL, do=(online.note_refusal, online.go_offline)),
    on(ONLINE, ev.SocketRejected, S.BACKOFF, "access token refused again, calls held",
       do=(online.note_refusal, online.go_offline), resume=S.AUTHORIZED),
    on(ONLINE, ev.SocketClosed, S.BACKOFF, "socket closed: reconnect after backoff, calls held",
       do=online.go_offline, resume=S.AUTHORIZED),
    on(ONLINE, ev.InvalidMessage, None, "malformed signaling message dropped",
       do=online.report_invalid_message),
    on(ONLINE, ev.UnknownMessage, None, "unknown signaling message ignored",
       do=online.report_unknown_once),
    # --- viewers: each session's events go to its session machine ---------------------
    on(SOCKET_OPEN, ev.OfferReceived, None, "offer to a new session",
       do=online.admit_offer),
    *(on(SOCKET_OPEN, event, None, f"{event.__name__} for an unknown session: reported",
         when=when.SESSION_KNOWN.negated(), do=(online.report_unknown_session, act.count_ignored))
      for event in (ev.HangupReceived, ev.RemoteIceCandidate)),
    *(on(SOCKET_OPEN, event, None, "to its session", do=online.deliver_to_session)
      for event in (ev.HangupReceived, ev.RemoteIceCandidate)),
    on(RUNNING, ev.SessionSetupExpired, None, "set-up timer to its session",
       do=(act.consume_timer, online.deliver_to_session)),
    *(on(RUNNING, event, None, "peer event of an ended session ignored",
         when=when.SESSION_KNOWN.negated(), do=act.count_ignored)
      for event in ev.PEER_EVENTS),
    on(RUNNING, ev.PeerConnected, None, "to its session: media flowing",
       do=online.note_peer_connected),
    *(on(RUNNING, event, None, "to its session", do=online.deliver_to_session)
      for event in ev.PEER_EVENTS),
    on(S.NEGOTIATING, None, S.STREAMING, "a viewer receives media", when=when.VIEWER_STREAMING),
    on(S.STREAMING, None, S.NEGOTIATING, "no viewer receives media",
       when=when.NO_VIEWER_STREAMING),
    # --- calls held while the socket is gone (protocol.md 3.3) -------------------------
    on(RUNNING, ev.OrphanGraceElapsed, None, "socket gone past the grace period: held calls end",
       do=(act.consume_timer, online.end_held_calls)),
    on(OFFLINE, None, None, "no call holds media: camera and audio released",
       when=when.MEDIA_UNUSED, do=online.close_media),
    # --- backoff ----------------------------------------------------------------------
    *(on(S.BACKOFF, ev.BackoffElapsed, state, "backoff elapsed",
         when=when.RESUME_IS[state], do=act.consume_timer)
      for state in RESUMABLE),
    # --- anywhere ---------------------------------------------------------------------
    on(RUNNING, ev.ShutdownRequested, S.STOPPED, "shutdown requested"),
    on(AFTER_START, ev.LogoutRequested, S.UNAUTHORIZED, "logout: grant discarded, calls end",
       do=(act.discard_grant, online.end_every_call, online.go_offline)),
    *(on(RUNNING, event, None, f"{device} status", do=note)
      for device, note, events in DEVICE_EVENTS for event in events),
    on(RUNNING, ev.TokenStoreFailed, None, "token file not written: tokens held in memory",
       do=act.report_store_failure),
    # --- what is left: nothing to do here ----------------------------------------------
    *(on(EVERY_STATE, timer, None, "timer with nothing to do here",
         do=(act.consume_timer, act.count_ignored), framing=True)
      for timer in ev.TIMER_EVENTS),
    *(on(EVERY_STATE, answer, None, "answer with nothing to do here",
         do=(act.settle_refresh, act.count_ignored), framing=True)
      for answer in REFRESH_ANSWERS),
)  # fmt: skip

LIFECYCLE_TABLE: tuple[Row[Context], ...] = tuple(rule.row for rule in RULES)

FAILURE_EVENTS: tuple[type[ev.Event], ...] = (
    ev.AuthTransientError,
    ev.AccessDenied,
    ev.DeviceFlowFailed,
    ev.ClientRejected,
    ev.DeviceCodeExpired,
    ev.FlowExpiryDue,
    ev.RefreshRejected,
    ev.SocketRejected,
    ev.SocketClosed,
    ev.OrphanGraceElapsed,
    ev.CameraFailed,
    ev.MicrophoneFailed,
    ev.SpeakerFailed,
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


def _is_failure_rule(rule: Rule) -> bool:
    return not rule.framing and rule.row.trigger in {trigger_name(e) for e in FAILURE_EVENTS}


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
    if _is_failure_rule(rule)
)
"""Which fault leads where: the rows of the table whose event is a failure."""
