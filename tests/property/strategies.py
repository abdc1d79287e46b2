"""Hypothesis strategies for arbitrary events, including nonsense ones: stale
timers, unknown sessions and peers, answers in the wrong state."""

from __future__ import annotations

from hypothesis import strategies as st

from intercom_fsm import events as ev
from intercom_fsm.effects import ScheduleTimer, Timer, timer_event
from intercom_fsm.events import AuthOperation, IceCandidate, StoredTokens, TokenGrant
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.testing import ResourceLedger

NOW = 1_700_000_000.0
SESSIONS = st.sampled_from(["", "a", "b", "c"])
TEXT = st.text(max_size=8)

grants = st.builds(
    TokenGrant,
    access_token=st.sampled_from(["acc1", "acc2"]),
    refresh_token=st.sampled_from(["ref1", "ref2"]),
    expires_in=st.floats(min_value=0, max_value=7200),
)
stored = st.builds(
    StoredTokens,
    access_token=st.just("stored-access"),
    refresh_token=st.just("stored-refresh"),
    expires_at=st.floats(min_value=NOW - 3600, max_value=NOW + 7200),
    device_code=st.just("stored-device"),
)
candidates = st.none() | st.builds(
    IceCandidate,
    candidate=st.sampled_from(["", "candidate:1 1 udp 1 127.0.0.1 5000 typ host"]),
    sdp_mid=st.none() | st.just("0"),
    sdp_mline_index=st.none() | st.just(0),
)

STATELESS = st.one_of(
    st.builds(ev.Started, tokens=st.none() | stored),
    st.builds(ev.ShutdownRequested),
    st.builds(ev.LogoutRequested),
    st.builds(
        ev.DeviceCodeIssued,
        device_code=st.just("dc"),
        user_code=st.just("WXYZ-1234"),
        verification_uri=st.just("https://example.test/device"),
        expires_in=st.floats(min_value=1, max_value=1800),
        interval=st.floats(min_value=0, max_value=10),
    ),
    st.builds(ev.AuthorizationPending),
    st.builds(ev.SlowDown),
    st.builds(ev.AccessDenied, description=st.none() | TEXT),
    st.builds(ev.DeviceCodeExpired),
    st.builds(ev.TokensGranted, grant=grants),
    st.builds(ev.TokensRefreshed, grant=grants),
    st.builds(ev.RefreshRejected),
    st.builds(
        ev.AuthTransientError,
        operation=st.sampled_from(AuthOperation),
        reason=TEXT,
        timed_out=st.booleans(),
    ),
    st.builds(ev.DeviceFlowFailed, error=st.sampled_from(["invalid_grant", "invalid_request"])),
    st.builds(
        ev.ClientRejected,
        operation=st.sampled_from(AuthOperation),
        error=st.sampled_from(["invalid_client", "unauthorized_client"]),
    ),
    st.builds(ev.TokenStoreFailed, reason=TEXT),
    st.builds(ev.SocketOpened),
    st.builds(ev.SocketRejected, status=st.sampled_from([401, 403, 4401, 4403])),
    st.builds(ev.SocketClosed, code=st.none() | st.sampled_from([1000, 1006, 1011])),
    st.builds(ev.OfferReceived, session=SESSIONS, sdp=st.just("v=0")),
    st.builds(ev.RemoteIceCandidate, session=SESSIONS, candidate=candidates),
    st.builds(ev.HangupReceived, session=SESSIONS),
    st.builds(ev.InvalidMessage, problem=TEXT, message_type=st.none() | TEXT),
    st.builds(ev.UnknownMessage, message_type=TEXT),
    st.builds(ev.CameraOpened),
    st.builds(ev.CameraFailed, reason=TEXT),
    st.builds(ev.CameraRecovered),
    st.builds(ev.MicrophoneOpened),
    st.builds(ev.MicrophoneFailed, reason=TEXT),
    st.builds(ev.MicrophoneRecovered),
    st.builds(ev.SpeakerOpened),
    st.builds(ev.SpeakerFailed, reason=TEXT),
    st.builds(ev.SpeakerRecovered),
)


def peer_events(machine: LifecycleMachine) -> st.SearchStrategy[ev.Event]:
    """Peer events for live viewers (mostly) and for peers that do not exist."""
    live = [(viewer.session, viewer.peer) for viewer in machine.context.viewers]
    pairs = st.tuples(SESSIONS, st.integers(min_value=1, max_value=6))
    if live:
        pairs = st.one_of(st.sampled_from(live), st.sampled_from(live), pairs)
    return pairs.flatmap(
        lambda pair: st.one_of(
            st.builds(ev.AnswerReady, st.just(pair[0]), st.just(pair[1]), st.just("answer")),
            st.builds(ev.LocalIceCandidate, st.just(pair[0]), st.just(pair[1]), candidates),
            st.just(ev.PeerConnected(pair[0], pair[1])),
            st.builds(ev.PeerFailed, st.just(pair[0]), st.just(pair[1]), TEXT),
            st.just(ev.PeerClosed(pair[0], pair[1])),
        )
    )


def timer_events(machine: LifecycleMachine, ledger: ResourceLedger) -> st.SearchStrategy[ev.Event]:
    """Timer firings: the pending ones (mostly) and stale ones."""
    generations = st.integers(min_value=0, max_value=50)
    pending = list(ledger.pending_timers.items())
    stale = st.one_of(
        st.builds(ev.PollDue, generations),
        st.builds(ev.BackoffElapsed, generations),
        st.builds(ev.AccessTokenExpiring, generations),
        st.builds(ev.FlowExpiryDue, generations),
        st.builds(ev.OrphanGraceElapsed, generations),
    )
    if not pending:
        return stale
    sessions = {viewer.peer: viewer.session for viewer in machine.context.viewers}

    def fire(item: tuple[tuple[Timer, int | None], int]) -> ev.Event:
        (timer, peer), generation = item
        session = sessions.get(peer or 0, "a")
        return timer_event(ScheduleTimer(timer, 0.0, generation, session=session, peer=peer))

    return st.sampled_from(pending).map(fire) | stale


def any_event(machine: LifecycleMachine, ledger: ResourceLedger) -> st.SearchStrategy[ev.Event]:
    peers = peer_events(machine)
    return st.one_of(STATELESS, peers, peers, timer_events(machine, ledger))
