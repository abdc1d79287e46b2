"""The machine's extended state: everything it remembers besides the state name.

The context is the lifecycle's model in the ``transitions`` library (the
library keeps the state name in ``state``), and where effects are emitted.
Opening and closing resources goes through its methods so that the machine
always knows what is open, and never asks to close something twice or to open
something it holds already.

Two clocks are injected. ``clock`` is wall time, for what is stored and
compared with a server's times (a token's absolute expiry). ``monotonic`` is
for durations (a device code's lifetime, the backoff's stable period, the
offer rate): a board without a real-time clock steps its wall clock at boot,
which must not expire a code a person is typing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from intercom_fsm.effects import (
    CancelTimer,
    CloseCamera,
    CloseMicrophone,
    CloseSocket,
    CloseSpeaker,
    Effect,
    OpenCamera,
    OpenMicrophone,
    OpenSocket,
    OpenSpeaker,
    RefreshTokens,
    ReportProblem,
    ScheduleTimer,
    Timer,
    TimerKey,
)
from intercom_fsm.events import PeerId, SessionId, StoredTokens
from intercom_fsm.machine.backoff import Backoff, BackoffPolicy
from intercom_fsm.states.base import State

if TYPE_CHECKING:
    from intercom_fsm.machine.viewers import Viewers

Clock = Callable[[], float]
"""Seconds. ``clock``: since the epoch (``time.time``); ``monotonic``: from any
origin (``time.monotonic``). Injected; a fake in tests."""

Random = Callable[[], float]
"""A uniform draw from [0, 1), for backoff jitter. Injected."""


@attrs.frozen
class MachineSettings:
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    refresh_margin: float = 60.0
    """Refresh the access token this many seconds before it expires."""
    slow_down_step: float = 5.0
    """RFC 8628 section 3.5: add this to the poll interval on ``slow_down``."""
    max_poll_interval: float = 60.0
    """A poll that timed out doubles the interval, up to this."""
    denial_pause: float = 30.0
    """After ``access_denied`` the next flow waits at least this long (within
    the backoff's cap): the person who refused is not shown a new code at once."""
    client_rejected_pause: float = 600.0
    """After ``invalid_client``/``unauthorized_client`` the device waits this
    long before asking again: only a change of configuration helps."""
    max_viewers: int = 4
    session_setup_timeout: float = 30.0
    """A viewer's peer that has not connected after this long is reaped."""
    session_orphan_grace: float = 60.0
    """A call whose media flows outlives the signaling socket for this long
    (protocol.md 3.3); after that it ends."""
    max_offers_per_second: float = 5.0
    """Offers beyond this rate (a burst of as many is allowed) are refused:
    each one costs an ICE gathering and a DTLS set-up."""
    microphone: bool = False
    """The device has a microphone to open with the camera (AUDIO_SOURCE)."""
    speaker: bool = False
    """The device has a speaker to open with the camera (AUDIO_SINK)."""
    max_unknown_types: int = 32
    """Unknown message types remembered (each is reported once); beyond
    that, they are reported as one kind, rate-limited by the runtime."""


@attrs.define
class DeviceFlow:
    device_code: str = attrs.field(repr=False)
    user_code: str
    interval: float
    expires_at: float
    """On the monotonic clock."""


@attrs.define
class Counters:
    events: int = 0
    ignored: Counter[str] = attrs.field(factory=Counter)
    stale_timers: int = 0
    stale_peer_events: int = 0
    refused_offers: int = 0
    sockets_opened: int = 0
    refreshes: int = 0
    sessions_held: int = 0
    """Calls that kept their media while the socket was gone."""
    sessions_resumed: int = 0
    """Held calls that the socket reached again after a reconnect."""


@attrs.define(slots=False)
class Context:
    settings: MachineSettings
    clock: Clock
    monotonic: Clock
    random: Random
    backoff: Backoff
    state: str = State.IDLE.value
    """The lifecycle state's name, kept by the ``transitions`` library."""
    tokens: StoredTokens | None = None
    token_lifetime: float | None = None
    """The current access token's lifetime as granted; unknown for tokens
    loaded from disk."""
    token_refused: bool = False
    """The backend refused the current access token (401/403): refresh it even
    though it has not expired."""
    refresh_in_flight: bool = False
    retry_after: float | None = None
    """A server's Retry-After, or a floor of our own (a denial), for the next
    backoff delay; still at most the backoff's cap."""
    pause: float | None = None
    """A wait that replaces the next backoff delay, cap or not (a rejected
    client)."""
    flow: DeviceFlow | None = None
    flows_refused_in_a_row: int = 0
    """Flows that ended in a denial or a server's error since the last grant."""
    resume: State = State.AUTHORIZED
    """Where Backoff goes back to when its timer fires."""
    socket_open: bool = False
    camera_open: bool = False
    camera_online: bool = True
    microphone_open: bool = False
    microphone_online: bool = True
    speaker_open: bool = False
    speaker_online: bool = True
    sockets_refused_in_a_row: int = 0
    online_since: float | None = None
    """When the socket last opened, on the monotonic clock."""
    pending_timers: dict[TimerKey, int] = attrs.field(factory=dict)
    next_generation: int = 1
    next_peer: PeerId = 1
    unknown_types_reported: set[str] = attrs.field(factory=set)
    offer_allowance: float | None = None
    offer_allowance_at: float = 0.0
    counters: Counters = attrs.field(factory=Counters)
    outbox: list[Effect] = attrs.field(factory=list)
    viewers: Viewers = attrs.field(init=False)
    """Set by the lifecycle machine right after construction."""

    def emit(self, effect: Effect) -> None:
        self.outbox.append(effect)

    def report(self, kind: str, message: str) -> None:
        self.emit(ReportProblem(message, kind))

    def take_effects(self) -> list[Effect]:
        effects, self.outbox = self.outbox, []
        return effects

    # --- tokens ---------------------------------------------------------------

    def refresh_margin(self) -> float:
        """How long before expiry to refresh: the setting, but at most half the
        access token's lifetime, so that a backend issuing short-lived tokens
        (a minute or less) does not leave every new token already "stale"."""
        if self.token_lifetime is None:
            return self.settings.refresh_margin
        return min(self.settings.refresh_margin, self.token_lifetime / 2)

    def access_token_fresh(self) -> bool:
        if self.tokens is None or self.token_refused:
            return False
        return self.clock() < self.tokens.expires_at - self.refresh_margin()

    def request_refresh(self) -> None:
        if self.tokens is not None and not self.refresh_in_flight:
            self.refresh_in_flight = True
            self.counters.refreshes += 1
            self.emit(RefreshTokens(self.tokens.refresh_token))

    def schedule_token_expiry(self) -> None:
        if self.tokens is not None:
            due = self.tokens.expires_at - self.refresh_margin() - self.clock()
            self.schedule(Timer.ACCESS_TOKEN_EXPIRY, max(0.0, due))

    def retry_delay(self) -> float:
        """The next backoff delay: a pause when one was set; otherwise the
        jittered delay, at least the Retry-After (or floor) when there is one,
        but never past the backoff's cap (the device stays bounded)."""
        if self.pause is not None:
            delay, self.pause = self.pause, None
            self.retry_after = None
            return delay
        delay = self.backoff.next_delay(self.monotonic(), self.random)
        if self.retry_after is not None:
            delay = min(self.settings.backoff.cap, max(delay, self.retry_after))
            self.retry_after = None
        return delay

    # --- the offer rate ---------------------------------------------------------

    def offer_allowance_now(self) -> float:
        """What the token bucket holds now (without taking from it)."""
        rate = self.settings.max_offers_per_second
        if self.offer_allowance is None:
            return rate
        elapsed = max(0.0, self.monotonic() - self.offer_allowance_at)
        return min(rate, self.offer_allowance + elapsed * rate)

    def take_offer_allowance(self) -> None:
        self.offer_allowance = self.offer_allowance_now() - 1.0
        self.offer_allowance_at = self.monotonic()

    # --- timers ---------------------------------------------------------------

    def schedule(
        self,
        timer: Timer,
        delay: float,
        *,
        session: SessionId | None = None,
        peer: PeerId | None = None,
    ) -> None:
        generation = self.next_generation
        self.next_generation += 1
        self.pending_timers[(timer, peer)] = generation
        self.emit(ScheduleTimer(timer, delay, generation, session=session, peer=peer))

    def cancel(self, timer: Timer, peer: PeerId | None = None) -> None:
        if self.pending_timers.pop((timer, peer), None) is not None:
            self.emit(CancelTimer(timer, peer))

    def is_pending(self, timer: Timer, peer: PeerId | None = None) -> bool:
        return (timer, peer) in self.pending_timers

    def timer_is_current(self, timer: Timer, generation: int, peer: PeerId | None = None) -> bool:
        """True when this firing is the pending one; a late or replaced timer's
        event is stale."""
        return self.pending_timers.get((timer, peer)) == generation

    def timer_fired(self, timer: Timer, peer: PeerId | None = None) -> None:
        self.pending_timers.pop((timer, peer), None)

    # --- socket, camera, microphone, speaker -------------------------------------

    def open_socket(self) -> None:
        if self.tokens is not None and not self.socket_open:
            self.socket_open = True
            self.counters.sockets_opened += 1
            self.emit(OpenSocket(self.tokens.device_code, self.tokens.access_token))

    def close_socket(self, reason: str) -> None:
        if self.socket_open:
            self.socket_open = False
            self.emit(CloseSocket(reason))

    @property
    def media_open(self) -> bool:
        return self.camera_open or self.microphone_open or self.speaker_open

    def open_media(self) -> None:
        """The camera, and the microphone and speaker the device has."""
        if not self.camera_open:
            self.camera_open = True
            self.emit(OpenCamera())
        if self.settings.microphone and not self.microphone_open:
            self.microphone_open = True
            self.emit(OpenMicrophone())
        if self.settings.speaker and not self.speaker_open:
            self.speaker_open = True
            self.emit(OpenSpeaker())

    def close_media(self) -> None:
        if self.camera_open:
            self.camera_open = False
            self.emit(CloseCamera())
        if self.microphone_open:
            self.microphone_open = False
            self.emit(CloseMicrophone())
        if self.speaker_open:
            self.speaker_open = False
            self.emit(CloseSpeaker())

    def cancel_all_timers(self) -> None:
        for timer, peer in list(self.pending_timers):
            self.cancel(timer, peer)
