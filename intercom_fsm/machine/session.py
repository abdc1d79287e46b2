"""The viewer session machine: one model per viewer (protocol.md section 2, ``session``).

Theory of operation
-------------------
Every offer becomes a session model in state ``New``, and the table decides
what the offer gets: refused (too many offers a second, or the viewer cap
reached), or a peer connection (``CreatePeer``), replacing the session's old
peer when the session exists. A live session goes

    Offered --AnswerReady--> Answered --PeerConnected--> Connected

and ends in Closed on a hangup, its peer's failure or close, a set-up that
took too long, a replacement, or the device shutting down or logging out.

Calls outlive the signaling socket (protocol.md 3.3): when the socket goes, a
Connected session is *Held*: its media keeps flowing, and it becomes Connected
again when the socket is back, so that the viewer's ``hangup`` and ``ice``
reach it. A session still setting up needs the socket and closes. A session
held longer than the grace period (``OrphanGraceElapsed``) closes.

A peer's event carries the peer's serial: the late news of a peer that was
replaced is dropped by the first rows. Closed and Refused are final; the
registry (``intercom_fsm.machine.viewers``) reaps them at once.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from intercom_fsm import events as ev
from intercom_fsm.effects import (
    AddRemoteCandidate,
    ClosePeer,
    CreatePeer,
    SendAnswer,
    SendIceCandidate,
    Timer,
)
from intercom_fsm.events import IceCandidate, PeerId, SessionId
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Action, Guard, Row, trigger_name


class SessionState(enum.StrEnum):
    NEW = "New"
    OFFERED = "Offered"
    ANSWERED = "Answered"
    CONNECTED = "Connected"
    HELD = "Held"
    CLOSED = "Closed"
    REFUSED = "Refused"


FINAL_SESSION_STATES = frozenset({SessionState.CLOSED, SessionState.REFUSED})


# --- what the lifecycle tells every session ------------------------------------


@attrs.frozen
class Replaced:
    """A new offer arrived for this session."""


@attrs.frozen
class Released:
    """The device shuts down or logs out: every call ends."""

    reason: str


@attrs.frozen
class SignalingLost:
    """The signaling socket went away."""


@attrs.frozen
class SignalingRestored:
    """The signaling socket is open again."""


@attrs.define(eq=False, slots=False)
class ViewerSession:
    """One viewer: a model of the session machine (the library keeps its
    state in ``state``)."""

    ctx: Context = attrs.field(repr=False)
    session: SessionId
    peer: PeerId = 0
    offer_sdp: str = attrs.field(default="", repr=False)
    queued_candidates: list[IceCandidate | None] = attrs.field(factory=list)
    state: str = SessionState.NEW.value


# --- guards -------------------------------------------------------------------------


def _offer_rate_exceeded(viewer: ViewerSession, _event: object) -> bool:
    return viewer.ctx.offer_allowance_now() < 1.0


def _session_exists(viewer: ViewerSession, _event: object) -> bool:
    return viewer.ctx.viewers.get(viewer.session) is not None


def _viewer_cap_reached(viewer: ViewerSession, _event: object) -> bool:
    return len(viewer.ctx.viewers) >= viewer.ctx.settings.max_viewers


def _from_another_peer(viewer: ViewerSession, event: Any) -> bool:
    return bool(event.peer != viewer.peer)


OFFER_RATE_EXCEEDED = Guard("offer rate exceeded", _offer_rate_exceeded)
SESSION_EXISTS = Guard("session exists", _session_exists)
VIEWER_CAP_REACHED = Guard("viewer cap reached", _viewer_cap_reached)
FROM_ANOTHER_PEER = Guard("from a replaced peer", _from_another_peer)


# --- actions ------------------------------------------------------------------------


def refuse_for_rate(viewer: ViewerSession, _event: object) -> None:
    ctx = viewer.ctx
    ctx.counters.refused_offers += 1
    ctx.report(
        "offer_refused",
        f"offer refused: more than {ctx.settings.max_offers_per_second:g} offers"
        f" a second (session {viewer.session!r})",
    )


def refuse_for_cap(viewer: ViewerSession, _event: object) -> None:
    ctx = viewer.ctx
    ctx.counters.refused_offers += 1
    ctx.report(
        "offer_refused",
        f"offer refused: {ctx.settings.max_viewers} viewers already (session {viewer.session!r})",
    )


def take_offer_allowance(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.take_offer_allowance()


def replace_existing(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.viewers.replace(viewer.session)


def create_peer(viewer: ViewerSession, event: ev.OfferReceived) -> None:
    ctx = viewer.ctx
    viewer.peer = ctx.next_peer
    ctx.next_peer += 1
    ctx.viewers.register(viewer)
    ctx.emit(CreatePeer(viewer.session, viewer.peer, event.sdp))
    ctx.schedule(
        Timer.SESSION_SETUP,
        ctx.settings.session_setup_timeout,
        session=viewer.session,
        peer=viewer.peer,
    )


def send_answer(viewer: ViewerSession, event: ev.AnswerReady) -> None:
    viewer.ctx.emit(SendAnswer(viewer.session, event.sdp))
    for candidate in viewer.queued_candidates:
        viewer.ctx.emit(SendIceCandidate(viewer.session, candidate))
    viewer.queued_candidates.clear()


def queue_candidate(viewer: ViewerSession, event: ev.LocalIceCandidate) -> None:
    viewer.queued_candidates.append(event.candidate)


def send_candidate(viewer: ViewerSession, event: ev.LocalIceCandidate) -> None:
    viewer.ctx.emit(SendIceCandidate(viewer.session, event.candidate))


def add_remote_candidate(viewer: ViewerSession, event: ev.RemoteIceCandidate) -> None:
    viewer.ctx.emit(AddRemoteCandidate(viewer.session, viewer.peer, event.candidate))


def stop_setup_timer(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.cancel(Timer.SESSION_SETUP, viewer.peer)


def drop_stale_peer_event(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.counters.stale_peer_events += 1


def count_held(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.counters.sessions_held += 1


def count_resumed(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.counters.sessions_resumed += 1


def close_peer(viewer: ViewerSession, event: object) -> None:
    stop_setup_timer(viewer, event)
    viewer.ctx.emit(ClosePeer(viewer.session, viewer.peer, close_reason(event)))


def close_reason(event: object) -> str:
    match event:
        case ev.PeerFailed(reason=reason):
            return f"peer failed: {reason}"
        case ev.PeerClosed():
            return "peer closed"
        case ev.HangupReceived():
            return "viewer hung up"
        case ev.SessionSetupExpired():
            return "peer did not connect in time"
        case Replaced():
            return "replaced by a new offer"
        case Released(reason=reason):
            return reason
        case SignalingLost():
            return "signaling went away before the call was set up"
        case ev.OrphanGraceElapsed():
            return "signaling gone longer than the grace period"
    return "closed"


# --- the table ------------------------------------------------------------------------

S = SessionState
LIVE = (S.OFFERED, S.ANSWERED, S.CONNECTED, S.HELD)
SETTING_UP = (S.OFFERED, S.ANSWERED)
REACHABLE = (S.OFFERED, S.ANSWERED, S.CONNECTED)
"""Live sessions the socket reaches (not Held)."""
ENDINGS: tuple[tuple[tuple[SessionState, ...], type[Any]], ...] = (
    (REACHABLE, ev.HangupReceived),
    (REACHABLE, Replaced),
    (SETTING_UP, ev.SessionSetupExpired),
    (LIVE, ev.PeerFailed),
    (LIVE, ev.PeerClosed),
    (LIVE, Released),
)
"""What ends a session, in the states it can reach."""


def on(
    sources: SessionState | tuple[SessionState, ...],
    event: type[Any] | None,
    dest: SessionState | None,
    reason: str,
    *,
    when: Guard[ViewerSession] | None = None,
    do: tuple[Action[ViewerSession], ...] | Action[ViewerSession] = (),
) -> Row[ViewerSession]:
    source_tuple = (sources,) if isinstance(sources, SessionState) else sources
    return Row(
        sources=tuple(s.value for s in source_tuple),
        trigger=trigger_name(event),
        dest=None if dest is None else dest.value,
        reason=reason,
        guard=when,
        actions=do if isinstance(do, tuple) else (do,),
    )


SESSION_TABLE: tuple[Row[ViewerSession], ...] = (
    # --- an offer: refused, replacing, or new ---------------------------------------
    on(S.NEW, ev.OfferReceived, S.REFUSED, "too many offers a second",
       when=OFFER_RATE_EXCEEDED, do=refuse_for_rate),
    on(S.NEW, ev.OfferReceived, S.OFFERED, "offer replaces the session's peer",
       when=SESSION_EXISTS, do=(take_offer_allowance, replace_existing, create_peer)),
    on(S.NEW, ev.OfferReceived, S.REFUSED, "viewer cap reached",
       when=VIEWER_CAP_REACHED, do=(take_offer_allowance, refuse_for_cap)),
    on(S.NEW, ev.OfferReceived, S.OFFERED, "offer: peer created",
       do=(take_offer_allowance, create_peer)),
    # --- a replaced peer's late news ----------------------------------------------------
    *(on(LIVE, event, None, "a replaced peer's event dropped",
         when=FROM_ANOTHER_PEER, do=drop_stale_peer_event)
      for event in (*ev.PEER_EVENTS, ev.SessionSetupExpired)),
    # --- set-up -------------------------------------------------------------------------
    on(S.OFFERED, ev.AnswerReady, S.ANSWERED, "answer ready: sent", do=send_answer),
    on(S.OFFERED, ev.LocalIceCandidate, None, "local candidate kept until the answer is sent",
       do=queue_candidate),
    on((S.ANSWERED, S.CONNECTED), ev.LocalIceCandidate, None, "local candidate trickled",
       do=send_candidate),
    on(REACHABLE, ev.RemoteIceCandidate, None,
       "remote candidate added", do=add_remote_candidate),
    on(S.ANSWERED, ev.PeerConnected, S.CONNECTED, "media flowing", do=stop_setup_timer),
    # --- the socket comes and goes; the call stays (protocol.md 3.3) --------------------
    on(S.CONNECTED, SignalingLost, S.HELD, "socket gone: media keeps flowing", do=count_held),
    on(SETTING_UP, SignalingLost, S.CLOSED, "set-up needs the socket", do=close_peer),
    on(S.HELD, SignalingRestored, S.CONNECTED, "socket back: hangup and ice reach the call",
       do=count_resumed),
    on(S.HELD, ev.OrphanGraceElapsed, S.CLOSED, "socket gone past the grace period",
       do=close_peer),
    # --- the end ------------------------------------------------------------------------
    *(on(sources, event, S.CLOSED, "session ended", do=close_peer) for sources, event in ENDINGS),
)  # fmt: skip
