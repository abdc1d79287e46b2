"""Viewer sessions: one small machine per viewer (protocol.md section 2, ``session``).

Every viewer has its own lifecycle, driven by the events that name its session:

    Offered --AnswerReady--> Answered --PeerConnected--> Connected
       any of them --PeerFailed | PeerClosed | HangupReceived | SessionSetupExpired
                     | Replaced | Released--> Closed

A closed session is reaped at once: its peer is closed (``ClosePeer``), its
setup timer cancelled, and it leaves the registry. A new offer for a session
that exists replaces it (the old one is closed first, ``Replaced``). Events of
a peer that was replaced carry its old serial and are ignored as stale.

The lifecycle machine routes session events here first and then reacts to the
aggregate: it is Streaming exactly while ``streaming_count() > 0``.

Session states have no entry or exit actions, so the registry takes a row
itself: the first row whose guard holds, its actions, then its state. The
``transitions`` library draws the same table (``intercom_fsm.diagram``); with
a dozen viewers trickling ICE, dispatching through it cost more than the work.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from intercom_fsm.effects import (
    AddRemoteCandidate,
    ClosePeer,
    CreatePeer,
    ReportProblem,
    SendAnswer,
    SendIceCandidate,
    Timer,
)
from intercom_fsm.events import (
    AnswerReady,
    Event,
    HangupReceived,
    IceCandidate,
    LocalIceCandidate,
    OfferReceived,
    PeerClosed,
    PeerFailed,
    PeerId,
    RemoteIceCandidate,
    SessionId,
    SessionSetupExpired,
)
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Row, index_rows, select_row, trigger_name


class SessionState(enum.StrEnum):
    OFFERED = "Offered"
    ANSWERED = "Answered"
    CONNECTED = "Connected"
    CLOSED = "Closed"


REPLACED = "Replaced"
"""Trigger: a new offer arrived for this session."""
RELEASED = "Released"
"""Trigger: the lifecycle left the online states or stopped."""


@attrs.define(eq=False)
class ViewerSession:
    """One viewer: the model the session machine drives. It is not registered
    with the library (that would decorate it with a dozen methods per offer);
    the registry fires the library's events on it directly."""

    ctx: Context = attrs.field(repr=False)
    session: SessionId
    peer: PeerId
    queued_candidates: list[IceCandidate | None] = attrs.field(factory=list)
    close_reason: str = ""
    state: str = SessionState.OFFERED.value


SessionAction = Callable[[ViewerSession, Any], None]


def send_answer(viewer: ViewerSession, event: AnswerReady) -> None:
    viewer.ctx.emit(SendAnswer(viewer.session, event.sdp))
    for candidate in viewer.queued_candidates:
        viewer.ctx.emit(SendIceCandidate(viewer.session, candidate))
    viewer.queued_candidates.clear()


def queue_candidate(viewer: ViewerSession, event: LocalIceCandidate) -> None:
    viewer.queued_candidates.append(event.candidate)


def send_candidate(viewer: ViewerSession, event: LocalIceCandidate) -> None:
    viewer.ctx.emit(SendIceCandidate(viewer.session, event.candidate))


def add_remote_candidate(viewer: ViewerSession, event: RemoteIceCandidate) -> None:
    viewer.ctx.emit(AddRemoteCandidate(viewer.session, viewer.peer, event.candidate))


def stop_setup_timer(viewer: ViewerSession, _event: object) -> None:
    viewer.ctx.cancel(Timer.SESSION_SETUP, viewer.peer)


def close_peer(viewer: ViewerSession, event: object) -> None:
    stop_setup_timer(viewer, event)
    reason = viewer.close_reason or _close_reason(event)
    viewer.ctx.emit(ClosePeer(viewer.session, viewer.peer, reason))


def _close_reason(event: object) -> str:
    if isinstance(event, PeerFailed):
        return f"peer failed: {event.reason}"
    if isinstance(event, PeerClosed):
        return "peer closed"
    if isinstance(event, HangupReceived):
        return "viewer hung up"
    if isinstance(event, SessionSetupExpired):
        return "peer did not connect in time"
    return "closed"


_LIVE = (SessionState.OFFERED, SessionState.ANSWERED, SessionState.CONNECTED)
_ENDINGS: tuple[type[Event], ...] = (PeerFailed, PeerClosed, HangupReceived, SessionSetupExpired)


def _row(
    sources: tuple[SessionState, ...],
    trigger: str,
    dest: SessionState | None,
    reason: str,
    *actions: SessionAction,
) -> Row[ViewerSession]:
    # Plain strings: the library would name an enum member by its Python name.
    return Row(
        tuple(s.value for s in sources),
        trigger,
        None if dest is None else dest.value,
        reason,
        actions=actions,
    )


SESSION_TABLE: tuple[Row[ViewerSession], ...] = (
    _row(
        (SessionState.OFFERED,),
        "AnswerReady",
        SessionState.ANSWERED,
        "answer ready: sent",
        send_answer,
    ),
    _row(
        (SessionState.OFFERED,),
        "LocalIceCandidate",
        None,
        "local candidate kept until the answer is sent",
        queue_candidate,
    ),
    _row(
        (SessionState.ANSWERED, SessionState.CONNECTED),
        "LocalIceCandidate",
        None,
        "local candidate trickled",
        send_candidate,
    ),
    _row(_LIVE, "RemoteIceCandidate", None, "remote candidate added", add_remote_candidate),
    _row(
        (SessionState.ANSWERED,),
        "PeerConnected",
        SessionState.CONNECTED,
        "media flowing",
        stop_setup_timer,
    ),
    *(
        _row(_LIVE, trigger_name(ending), SessionState.CLOSED, "session ended", close_peer)
        for ending in _ENDINGS
    ),
    _row(_LIVE, REPLACED, SessionState.CLOSED, "replaced by a new offer", close_peer),
    _row(_LIVE, RELEASED, SessionState.CLOSED, "signaling went away", close_peer),
)


SessionListener = Callable[[ViewerSession, str, Row[ViewerSession]], None]
"""Told of every row a session takes, before its actions run."""


class Viewers:
    """The registry of live viewer sessions and their shared machine."""

    def __init__(self, ctx: Context, fired: SessionListener) -> None:
        self._ctx = ctx
        self._fired = fired
        self._sessions: dict[SessionId, ViewerSession] = {}
        self._rows = index_rows(SESSION_TABLE)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ViewerSession]:
        return iter(list(self._sessions.values()))

    def get(self, session: SessionId) -> ViewerSession | None:
        return self._sessions.get(session)

    def streaming_count(self) -> int:
        return sum(1 for v in self._sessions.values() if v.state == SessionState.CONNECTED)

    def route(self, event: Event) -> bool:
        """Deliver a session event; False when no live session wanted it."""
        if isinstance(event, OfferReceived):
            return self._offer(event)
        viewer = self._sessions.get(event.session)  # type: ignore[union-attr]
        if viewer is None:
            if isinstance(event, HangupReceived | RemoteIceCandidate):
                # From the backend: worth a line (a misrouted viewer, a
                # backend bug). A replaced peer's late news is not.
                kind = "hangup" if isinstance(event, HangupReceived) else "ICE candidate"
                self._ctx.emit(
                    ReportProblem(f"{kind} for unknown viewer session {event.session!r} ignored")
                )
            return False
        peer = getattr(event, "peer", None)
        if peer is not None and peer != viewer.peer:
            return False
        accepted = self._fire(viewer, trigger_name(type(event)), event)
        self._reap(viewer)
        return accepted

    def release_all(self, reason: str) -> None:
        for viewer in self:
            viewer.close_reason = reason
            self._fire(viewer, RELEASED, None)
            self._reap(viewer)

    def _offer(self, event: OfferReceived) -> bool:
        ctx = self._ctx
        if not ctx.take_offer_allowance():
            ctx.counters.refused_offers += 1
            ctx.emit(
                ReportProblem(
                    f"offer refused: more than {ctx.settings.max_offers_per_second:g} offers"
                    f" a second (session {event.session!r})"
                )
            )
            return True
        existing = self._sessions.get(event.session)
        if existing is not None:
            existing.close_reason = "replaced by a new offer"
            self._fire(existing, REPLACED, None)
            self._reap(existing)
        elif len(self._sessions) >= ctx.settings.max_viewers:
            ctx.counters.refused_offers += 1
            ctx.emit(
                ReportProblem(
                    f"offer refused: {ctx.settings.max_viewers} viewers already"
                    f" (session {event.session!r})"
                )
            )
            return True
        viewer = ViewerSession(ctx=ctx, session=event.session, peer=ctx.next_peer)
        ctx.next_peer += 1
        self._sessions[event.session] = viewer
        ctx.emit(CreatePeer(event.session, viewer.peer, event.sdp))
        ctx.schedule(
            Timer.SESSION_SETUP,
            ctx.settings.session_setup_timeout,
            session=event.session,
            peer=viewer.peer,
        )
        return True

    def _fire(self, viewer: ViewerSession, trigger: str, event: Event | None) -> bool:
        row = select_row(self._rows, viewer.state, trigger, viewer, event)
        if row is None:
            return False
        self._fired(viewer, trigger, row)
        for action in row.actions:
            action(viewer, event)
        if row.dest is not None:
            viewer.state = row.dest
        return True

    def _reap(self, viewer: ViewerSession) -> None:
        if viewer.state == SessionState.CLOSED and self._sessions.get(viewer.session) is viewer:
            del self._sessions[viewer.session]
