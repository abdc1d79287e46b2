"""The machine's extended state: everything it remembers besides the state name.

The context is where effects are emitted. Opening and closing resources goes
through its methods so that the machine always knows what is open, and never
asks to close something twice or to open something it holds already.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from intercom_fsm.effects import (
    CancelTimer,
    CloseCamera,
    CloseSocket,
    Effect,
    OpenCamera,
    OpenSocket,
    RefreshTokens,
    ScheduleTimer,
    Timer,
    TimerKey,
)
from intercom_fsm.events import PeerId, SessionId, StoredTokens
from intercom_fsm.machine.backoff import Backoff, BackoffPolicy
from intercom_fsm.states.base import State

if TYPE_CHECKING:
    from intercom_fsm.machine.session import Viewers

Clock = Callable[[], float]
"""Seconds since the epoch. Injected: ``time.time`` in the daemon, a fake in
tests."""

Random = Callable[[], float]
"""A uniform draw from [0, 1), for backoff jitter. Injected."""


@attrs.frozen
class MachineSettings:
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    refresh_margin: float = 60.0
    """Refresh the access token this many seconds before it expires."""
    slow_down_step: float = 5.0
    """RFC 8628 section 3.5: add this to the poll interval on ``slow_down``."""
    max_viewers: int = 4
    session_setup_timeout: float = 30.0
    """A viewer's peer that has not connected after this long is reaped."""
    max_offers_per_second: float = 5.0
    """Offers beyond this rate (a burst of as many is allowed) are refused:
    each one costs an ICE gathering and a DTLS set-up."""


@attrs.define
class DeviceFlow:
    device_code: str = attrs.field(repr=False)
    user_code: str
    interval: float
    expires_at: float


@attrs.define
class Counters:
    events: int = 0
    ignored: Counter[str] = attrs.field(factory=Counter)
    stale_timers: int = 0
    refused_offers: int = 0
    sockets_opened: int = 0
    refreshes: int = 0


@attrs.define
class Context:
    settings: MachineSettings
    clock: Clock
    random: Random
    backoff: Backoff
    tokens: StoredTokens | None = None
    token_lifetime: float | None = None
    """The current access token's lifetime as granted; unknown for tokens
    loaded from disk."""
    token_refused: bool = False
    """The backend refused the current access token (401/403): refresh it even
    though it has not expired."""
    refresh_in_flight: bool = False
    retry_after: float | None = None
    """A server's Retry-After from the last transient failure, if it gave one."""
    flow: DeviceFlow | None = None
    resume: State = State.AUTHORIZED
    """Where Backoff goes back to when its timer fires."""
    socket_open: bool = False
    camera_open: bool = False
    camera_online: bool = True
    sockets_refused_in_a_row: int = 0
    online_since: float | None = None
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
        """The next backoff delay; at least the server's Retry-After when it
        gave one, but never past the backoff's cap (the device stays bounded)."""
        delay = self.backoff.next_delay(self.clock(), self.random)
        if self.retry_after is not None:
            delay = min(self.settings.backoff.cap, max(delay, self.retry_after))
            self.retry_after = None
        return delay

    def take_offer_allowance(self) -> bool:
        """A token bucket: False when offers arrive faster than allowed."""
        rate = self.settings.max_offers_per_second
        now = self.clock()
        if self.offer_allowance is None:
            self.offer_allowance = rate
        else:
            elapsed = max(0.0, now - self.offer_allowance_at)
            self.offer_allowance = min(rate, self.offer_allowance + elapsed * rate)
        self.offer_allowance_at = now
        if self.offer_allowance < 1.0:
            return False
        self.offer_allowance -= 1.0
        return True

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

    def consume_timer(self, timer: Timer, generation: int, peer: PeerId | None = None) -> bool:
        """True when this firing is the pending one; a late or replaced timer's
        event is stale."""
        if self.pending_timers.get((timer, peer)) != generation:
            return False
        del self.pending_timers[(timer, peer)]
        return True

    # --- socket and camera -------------------------------------------------------

    def open_socket(self) -> None:
        if self.tokens is not None and not self.socket_open:
            self.socket_open = True
            self.counters.sockets_opened += 1
            self.emit(OpenSocket(self.tokens.device_code, self.tokens.access_token))

    def close_socket(self, reason: str) -> None:
        if self.socket_open:
            self.socket_open = False
            self.emit(CloseSocket(reason))

    def open_camera(self) -> None:
        if not self.camera_open:
            self.camera_open = True
            self.emit(OpenCamera())

    def close_camera(self) -> None:
        if self.camera_open:
            self.camera_open = False
            self.emit(CloseCamera())

    def release_resources(self, reason: str) -> None:
        self.close_camera()
        self.close_socket(reason)
        for timer, peer in list(self.pending_timers):
            self.cancel(timer, peer)
