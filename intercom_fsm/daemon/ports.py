"""What the runtime needs from each adapter. The daemon's adapters fit these;
an embedding product can bring its own (another camera, another transport)."""

from __future__ import annotations

from typing import Protocol

from intercom_fsm import events as ev
from intercom_fsm.effects import ShowUserCode
from intercom_fsm.events import IceCandidate, PeerId, SessionId, StoredTokens


class AuthPort(Protocol):
    async def request_device_code(
        self,
    ) -> ev.DeviceCodeIssued | ev.ClientRejected | ev.AuthTransientError: ...

    async def poll_token(
        self, device_code: str
    ) -> (
        ev.TokensGranted
        | ev.AuthorizationPending
        | ev.SlowDown
        | ev.AccessDenied
        | ev.DeviceCodeExpired
        | ev.DeviceFlowFailed
        | ev.ClientRejected
        | ev.AuthTransientError
    ): ...

    async def refresh(
        self, refresh_token: str
    ) -> ev.TokensRefreshed | ev.RefreshRejected | ev.ClientRejected | ev.AuthTransientError: ...


class TokenStorePort(Protocol):
    def save(self, tokens: StoredTokens) -> None: ...

    def clear(self) -> bool: ...


class SignalingPort(Protocol):
    def open(self, device_code: str, access_token: str) -> None: ...

    async def close(self, reason: str) -> None: ...

    async def send_answer(self, session: SessionId, sdp: str) -> None: ...

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None: ...


class PeersPort(Protocol):
    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None: ...

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None: ...

    async def close(self, peer: PeerId) -> None: ...

    async def close_all(self) -> None: ...


class CameraPort(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


class AudioPort(Protocol):
    """The door's microphone and speaker. Opening returns at once; the device
    reports MicrophoneOpened / MicrophoneFailed / MicrophoneRecovered (and the
    Speaker* events) as it comes and goes."""

    async def open_microphone(self) -> None: ...

    async def close_microphone(self) -> None: ...

    async def open_speaker(self) -> None: ...

    async def close_speaker(self) -> None: ...

    async def close(self) -> None:
        """At shutdown: both devices and whatever reads the viewers' voices."""


class UserPromptPort(Protocol):
    def __call__(self, effect: ShowUserCode) -> None: ...
