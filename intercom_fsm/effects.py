"""Every effect the lifecycle machine can ask for.

The machine does no I/O: each call to ``handle(event)`` returns a list of
these frozen values, in the order they must be carried out, and the runtime
hands each to the adapter that owns it. An embedding product can carry them
out with adapters of its own.

Resources come in pairs so that nothing leaks: every :class:`OpenSocket` is
followed by exactly one :class:`CloseSocket`, every :class:`CreatePeer` by
exactly one :class:`ClosePeer`, every :class:`OpenCamera` by exactly one
:class:`CloseCamera` (and likewise the microphone and the speaker), even when
the far side closed first. Adapters make the close idempotent and release
everything in it.
"""

from __future__ import annotations

import enum

import attrs

from intercom_fsm import events as ev
from intercom_fsm.events import IceCandidate, PeerId, SessionId, StoredTokens


class Timer(enum.Enum):
    """The machine's timers. Each fires the event of the same name."""

    POLL = "poll"
    BACKOFF = "backoff"
    ACCESS_TOKEN_EXPIRY = "access_token_expiry"
    FLOW_EXPIRY = "flow_expiry"
    ORPHAN_GRACE = "orphan_grace"
    SESSION_SETUP = "session_setup"


# --- Auth ---------------------------------------------------------------------


@attrs.frozen
class RequestDeviceCode:
    """POST the device authorization request (protocol.md 1.1)."""


@attrs.frozen
class ShowUserCode:
    """Tell the person where to go and which code to enter."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float


@attrs.frozen
class PollToken:
    """POST one device-code token request (protocol.md 1.2)."""

    device_code: str = attrs.field(repr=False)


@attrs.frozen
class RefreshTokens:
    """POST a refresh-token grant (protocol.md 1.3)."""

    refresh_token: str = attrs.field(repr=False)


@attrs.frozen
class StoreTokens:
    """Write the tokens atomically (protocol.md 1.4)."""

    tokens: StoredTokens


@attrs.frozen
class DiscardTokens:
    """The grant is gone: forget the stored tokens."""

    reason: str


@attrs.frozen
class ReportProblem:
    """Something the operator must know about that is not a state change.
    ``kind`` groups repeats of the same problem (``invalid_message``,
    ``offer_refused``, ...), so that a flood is logged as one line per kind
    and interval, with a count."""

    message: str
    kind: str = "problem"


# --- Signaling ----------------------------------------------------------------


@attrs.frozen
class OpenSocket:
    device_code: str = attrs.field(repr=False)
    access_token: str = attrs.field(repr=False)


@attrs.frozen
class CloseSocket:
    reason: str


@attrs.frozen
class SendAnswer:
    session: SessionId
    sdp: str = attrs.field(repr=False)


@attrs.frozen
class SendIceCandidate:
    session: SessionId
    candidate: IceCandidate | None


# --- Peer connections ---------------------------------------------------------


@attrs.frozen
class CreatePeer:
    """Create a peer connection, apply the offer, produce an answer
    (:class:`~intercom_fsm.events.AnswerReady`)."""

    session: SessionId
    peer: PeerId
    offer_sdp: str = attrs.field(repr=False)


@attrs.frozen
class AddRemoteCandidate:
    session: SessionId
    peer: PeerId
    candidate: IceCandidate | None


@attrs.frozen
class ClosePeer:
    session: SessionId
    peer: PeerId
    reason: str


# --- Camera -------------------------------------------------------------------


@attrs.frozen
class OpenCamera:
    """The socket is open (Negotiating): start capturing now, so that the
    first viewer's frames do not wait for the camera to start."""


@attrs.frozen
class CloseCamera:
    """The socket is gone and no call holds media, or shutdown: stop
    capturing and release the device."""


# --- Audio devices ------------------------------------------------------------


@attrs.frozen
class OpenMicrophone:
    """Start capturing the door's microphone, shared by every listening viewer."""


@attrs.frozen
class CloseMicrophone:
    """Stop capturing and release the capture device."""


@attrs.frozen
class OpenSpeaker:
    """Open the door's speaker for the viewers' voices (mixed)."""


@attrs.frozen
class CloseSpeaker:
    """Stop playing and release the playback device."""


# --- Timers -------------------------------------------------------------------


@attrs.frozen
class ScheduleTimer:
    """Deliver the timer's event with this ``generation`` after ``delay``
    seconds. A timer of the same key that is still pending is replaced."""

    timer: Timer
    delay: float
    generation: int
    session: SessionId | None = None
    peer: PeerId | None = None

    @property
    def key(self) -> TimerKey:
        return (self.timer, self.peer)


@attrs.frozen
class CancelTimer:
    timer: Timer
    peer: PeerId | None = None

    @property
    def key(self) -> TimerKey:
        return (self.timer, self.peer)


TimerKey = tuple[Timer, PeerId | None]
"""A pending timer: the session-setup timer exists once per peer."""


Effect = (
    RequestDeviceCode
    | ShowUserCode
    | PollToken
    | RefreshTokens
    | StoreTokens
    | DiscardTokens
    | ReportProblem
    | OpenSocket
    | CloseSocket
    | SendAnswer
    | SendIceCandidate
    | CreatePeer
    | AddRemoteCandidate
    | ClosePeer
    | OpenCamera
    | CloseCamera
    | OpenMicrophone
    | CloseMicrophone
    | OpenSpeaker
    | CloseSpeaker
    | ScheduleTimer
    | CancelTimer
)
"""Every effect, as one union type."""


def timer_event(effect: ScheduleTimer) -> ev.TimerEvent:
    """The event a runtime delivers when ``effect``'s timer fires."""
    match effect.timer:
        case Timer.POLL:
            return ev.PollDue(effect.generation)
        case Timer.BACKOFF:
            return ev.BackoffElapsed(effect.generation)
        case Timer.ACCESS_TOKEN_EXPIRY:
            return ev.AccessTokenExpiring(effect.generation)
        case Timer.FLOW_EXPIRY:
            return ev.FlowExpiryDue(effect.generation)
        case Timer.ORPHAN_GRACE:
            return ev.OrphanGraceElapsed(effect.generation)
        case Timer.SESSION_SETUP:
            return ev.SessionSetupExpired(effect.generation, effect.session or "", effect.peer or 0)
