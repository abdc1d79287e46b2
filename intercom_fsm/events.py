"""Every event the lifecycle machine understands.

Events are what happened in the outside world, told to the machine by an
adapter (or by the runtime's timers). Each is a frozen attrs class, grouped
here by the source that produces it. The machine never raises on an event: one
that means nothing in the current state is counted as ignored.

The values carried are already parsed and typed: adapters turn raw HTTP bodies,
WebSocket frames and peer callbacks into these classes at the edge, and turn
anything that does not parse into :class:`InvalidMessage` or
:class:`AuthTransientError`.
"""

from __future__ import annotations

import attrs

from intercom_fsm.values import DEFAULT_SESSION as DEFAULT_SESSION
from intercom_fsm.values import AuthOperation as AuthOperation
from intercom_fsm.values import IceCandidate as IceCandidate
from intercom_fsm.values import PeerId as PeerId
from intercom_fsm.values import SessionId as SessionId
from intercom_fsm.values import StoredTokens as StoredTokens
from intercom_fsm.values import TokenGrant as TokenGrant

# --- Lifecycle ---------------------------------------------------------------


@attrs.frozen
class Started:
    """The runtime is up. ``tokens`` is what the token store held, if anything
    usable."""

    tokens: StoredTokens | None = None


@attrs.frozen
class ShutdownRequested:
    reason: str = "shutdown requested"


@attrs.frozen
class LogoutRequested:
    """Forget the grant and start a new device flow."""


# --- Auth poller (device flow and refresh, protocol.md section 1) -------------


@attrs.frozen
class DeviceCodeIssued:
    device_code: str = attrs.field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float = 5.0
    verification_uri_complete: str | None = None


@attrs.frozen
class AuthorizationPending:
    pass


@attrs.frozen
class SlowDown:
    pass


@attrs.frozen
class AccessDenied:
    description: str | None = None


@attrs.frozen
class DeviceCodeExpired:
    pass


@attrs.frozen
class TokensGranted:
    grant: TokenGrant


@attrs.frozen
class TokensRefreshed:
    grant: TokenGrant


@attrs.frozen
class RefreshRejected:
    """The grant is gone (``invalid_grant``): only a new device flow helps."""

    error: str = "invalid_grant"
    description: str | None = None


@attrs.frozen
class AuthTransientError:
    """Network error, timeout, 5xx, 429 or a body that does not parse: retry
    after backoff, keep everything. ``timed_out`` marks a connection that got
    no answer in time: while polling, RFC 8628 section 3.5 asks the client to
    poll less often rather than to retry at once."""

    operation: AuthOperation
    reason: str
    retry_after: float | None = None
    timed_out: bool = False


@attrs.frozen
class DeviceFlowFailed:
    """The token endpoint ended the flow with an error RFC 8628 section 3.5
    does not let the client poll past (``invalid_grant``, ``invalid_request``,
    a 4xx without an OAuth body, a token answer missing ``refresh_token`` or
    ``expires_in``): this device code is dead, a new flow follows a backoff."""

    error: str
    description: str | None = None


@attrs.frozen
class ClientRejected:
    """``invalid_client`` or ``unauthorized_client`` from any endpoint: the
    client's configuration (id, secret, allowed grant types) is wrong. Nothing
    the device retries soon will fix it; the grant, if any, is kept."""

    operation: AuthOperation
    error: str
    description: str | None = None


# --- Token store ------------------------------------------------------------


@attrs.frozen
class TokenStoreFailed:
    """Writing the token file failed (disk full, read-only): the machine keeps
    running on the tokens it holds."""

    reason: str


# --- Signaling socket (protocol.md section 2) --------------------------------


@attrs.frozen
class SocketOpened:
    pass


@attrs.frozen
class SocketRejected:
    """The access token was not accepted: handshake status 401/403 or close
    code 4401/4403."""

    status: int


@attrs.frozen
class SocketClosed:
    code: int | None = None
    reason: str = ""


@attrs.frozen
class OfferReceived:
    session: SessionId
    sdp: str = attrs.field(repr=False)


@attrs.frozen
class RemoteIceCandidate:
    """``candidate`` None (or an empty string inside) means end of candidates."""

    session: SessionId
    candidate: IceCandidate | None


@attrs.frozen
class HangupReceived:
    session: SessionId


@attrs.frozen
class InvalidMessage:
    """A frame that did not parse. ``message_type`` is the frame's type when it
    had a readable one."""

    problem: str
    message_type: str | None = None


@attrs.frozen
class UnknownMessage:
    message_type: str


# --- Peer connections (one per viewer session) --------------------------------


@attrs.frozen
class AnswerReady:
    session: SessionId
    peer: PeerId
    sdp: str = attrs.field(repr=False)


@attrs.frozen
class LocalIceCandidate:
    session: SessionId
    peer: PeerId
    candidate: IceCandidate | None


@attrs.frozen
class PeerConnected:
    session: SessionId
    peer: PeerId


@attrs.frozen
class PeerFailed:
    session: SessionId
    peer: PeerId
    reason: str


@attrs.frozen
class PeerClosed:
    session: SessionId
    peer: PeerId


# --- Camera -----------------------------------------------------------------


@attrs.frozen
class CameraOpened:
    description: str = ""


@attrs.frozen
class CameraFailed:
    reason: str


@attrs.frozen
class CameraRecovered:
    pass


# --- Audio devices (protocol.md section 3.2) ------------------------------------
# Like the camera, each device is opened once and shared by every viewer; the
# adapter retries a device that went away and says when it is back.


@attrs.frozen
class MicrophoneOpened:
    description: str = ""


@attrs.frozen
class MicrophoneFailed:
    reason: str


@attrs.frozen
class MicrophoneRecovered:
    pass


@attrs.frozen
class SpeakerOpened:
    description: str = ""


@attrs.frozen
class SpeakerFailed:
    reason: str


@attrs.frozen
class SpeakerRecovered:
    pass


# --- Timers (scheduled by the machine's ScheduleTimer effect) -----------------


@attrs.frozen
class PollDue:
    generation: int


@attrs.frozen
class BackoffElapsed:
    generation: int


@attrs.frozen
class AccessTokenExpiring:
    generation: int


@attrs.frozen
class FlowExpiryDue:
    """The device code's ``expires_in`` has passed on the device's own clock."""

    generation: int


@attrs.frozen
class OrphanGraceElapsed:
    """The signaling socket has been gone for the grace period: calls that
    kept their media through the outage end now (protocol.md 3.3)."""

    generation: int


@attrs.frozen
class SessionSetupExpired:
    """A viewer's peer did not reach ``connected`` in time: reap it."""

    generation: int
    session: SessionId
    peer: PeerId


TimerEvent = (
    PollDue
    | BackoffElapsed
    | AccessTokenExpiring
    | FlowExpiryDue
    | OrphanGraceElapsed
    | SessionSetupExpired
)

Event = (
    Started
    | ShutdownRequested
    | LogoutRequested
    | DeviceCodeIssued
    | AuthorizationPending
    | SlowDown
    | AccessDenied
    | DeviceCodeExpired
    | TokensGranted
    | TokensRefreshed
    | RefreshRejected
    | AuthTransientError
    | DeviceFlowFailed
    | ClientRejected
    | TokenStoreFailed
    | SocketOpened
    | SocketRejected
    | SocketClosed
    | OfferReceived
    | RemoteIceCandidate
    | HangupReceived
    | InvalidMessage
    | UnknownMessage
    | AnswerReady
    | LocalIceCandidate
    | PeerConnected
    | PeerFailed
    | PeerClosed
    | CameraOpened
    | CameraFailed
    | CameraRecovered
    | MicrophoneOpened
    | MicrophoneFailed
    | MicrophoneRecovered
    | SpeakerOpened
    | SpeakerFailed
    | SpeakerRecovered
    | PollDue
    | BackoffElapsed
    | AccessTokenExpiring
    | FlowExpiryDue
    | OrphanGraceElapsed
    | SessionSetupExpired
)
"""Every event, as one union type."""

TIMER_EVENTS: tuple[type[TimerEvent], ...] = TimerEvent.__args__

PEER_EVENTS = (AnswerReady, LocalIceCandidate, PeerConnected, PeerFailed, PeerClosed)
"""What a viewer's peer connection tells; it needs no socket."""
