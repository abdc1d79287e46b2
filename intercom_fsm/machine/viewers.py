"""The registry of viewer sessions: the models of one session machine.

Every offer is added to the session machine as a new model (``add_model``)
and fed to it; what the table decides comes back in the model's state. A
session that ends (Closed) or never began (Refused) leaves the machine
(``remove_model``) and the registry at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from transitions import State as LibraryState

from intercom_fsm import events as ev
from intercom_fsm.events import SessionId
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import RowListener, RowMachine, trigger_name
from intercom_fsm.machine.session import (
    FINAL_SESSION_STATES,
    SESSION_TABLE,
    Released,
    Replaced,
    SessionState,
    ViewerSession,
)

SESSION_MACHINE = "session"


def session_states() -> list[LibraryState]:
    return [
        LibraryState(state.value, final=state in FINAL_SESSION_STATES) for state in SessionState
    ]


class Viewers:
    def __init__(self, ctx: Context, taken: RowListener) -> None:
        self._ctx = ctx
        self._sessions: dict[SessionId, ViewerSession] = {}
        self.machine = RowMachine(
            name=SESSION_MACHINE,
            states=session_states(),
            rows=SESSION_TABLE,
            initial=SessionState.NEW.value,
            subject=lambda model: model,
            taken=taken,
        )

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ViewerSession]:
        return iter(list(self._sessions.values()))

    def get(self, session: SessionId) -> ViewerSession | None:
        return self._sessions.get(session)

    def count(self, state: SessionState) -> int:
        return sum(1 for viewer in self._sessions.values() if viewer.state == state)

    def streaming_count(self) -> int:
        return self.count(SessionState.CONNECTED)

    # --- what the lifecycle's rows call ------------------------------------------------

    def offer(self, event: ev.OfferReceived) -> None:
        """A new session model decides what the offer gets (session table)."""
        viewer = ViewerSession(ctx=self._ctx, session=event.session, offer_sdp=event.sdp)
        self.machine.add_model(viewer)
        self._fire(viewer, event)

    def deliver(self, event: Any) -> bool:
        """A session's event to its session; False when no row took it."""
        viewer = self._sessions.get(event.session)
        if viewer is None:
            return False
        return self._fire(viewer, event)

    def tell_all(self, event: object) -> None:
        """Something every session hears (the socket lost or back, shutdown)."""
        for viewer in self:
            self._fire(viewer, event)

    def release_all(self, reason: str) -> None:
        self.tell_all(Released(reason))

    # --- what the session table's actions call ------------------------------------------

    def register(self, viewer: ViewerSession) -> None:
        self._sessions[viewer.session] = viewer

    def replace(self, session: SessionId) -> None:
        existing = self._sessions.get(session)
        if existing is not None:
            self._fire(existing, Replaced())

    # --- internals -----------------------------------------------------------------------

    def _fire(self, viewer: ViewerSession, event: object) -> bool:
        taken = self.machine.fire(viewer, trigger_name(type(event)), event)
        if not taken:
            self._ctx.counters.ignored[f"{viewer.state}:{type(event).__name__}"] += 1
        if viewer.state in FINAL_SESSION_STATES:
            self._reap(viewer)
        return taken

    def _reap(self, viewer: ViewerSession) -> None:
        if self._sessions.get(viewer.session) is viewer:
            del self._sessions[viewer.session]
        if viewer in self.machine.models:
            self.machine.remove_model(viewer)
