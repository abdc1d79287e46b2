"""``intercom-fsm login``: the device flow (or a refresh) and nothing else.

The machine runs as in the daemon, with no socket, peers or camera: the
moment it would open the socket, login has what it came for. The auth adapter
is watched on the way: a client the server rejects ends login at once with
its own exit code (retrying cannot fix a wrong client id or secret), and a
flow the server ended (RFC 8628 section 3.5) is said plainly before the
machine starts the next one.
"""

from __future__ import annotations

import sys
from typing import TypeVar

import aiohttp

from intercom_fsm import events as ev
from intercom_fsm.adapters.auth import AuthClient
from intercom_fsm.adapters.auth_responses import (
    DeviceAuthorizationResult,
    PollResult,
    RefreshResult,
)
from intercom_fsm.adapters.token_store import TokenStore
from intercom_fsm.config import Config
from intercom_fsm.daemon.app import (
    auth_settings,
    config_secrets,
    install_signal_handlers,
    load_tokens,
    machine_settings,
    prompt,
)
from intercom_fsm.daemon.exit_codes import EXIT_CLIENT_REJECTED, EXIT_FAILURE, EXIT_OK
from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.daemon.runtime import Adapters, Runtime
from intercom_fsm.events import IceCandidate, PeerId, SessionId
from intercom_fsm.machine import LifecycleMachine
from intercom_fsm.redact import RedactingFilter
from intercom_fsm.states import State

R = TypeVar("R")


class _WatchedAuth:
    def __init__(self, auth: AuthClient, inbox: Inbox) -> None:
        self._auth = auth
        self._inbox = inbox
        self.rejected: ev.ClientRejected | None = None

    async def request_device_code(self) -> DeviceAuthorizationResult:
        return self._watch(await self._auth.request_device_code())

    async def poll_token(self, device_code: str) -> PollResult:
        return self._watch(await self._auth.poll_token(device_code))

    async def refresh(self, refresh_token: str) -> RefreshResult:
        return self._watch(await self._auth.refresh(refresh_token))

    def _watch(self, result: R) -> R:
        if isinstance(result, ev.ClientRejected) and self.rejected is None:
            self.rejected = result
            self._inbox.post(ev.ShutdownRequested("the server rejects this client"))
        elif isinstance(result, ev.DeviceFlowFailed):
            said = f": {result.description}" if result.description else ""
            print(
                f"the server ended this device flow ({result.error}{said}); "
                "a new code follows after a backoff",
                file=sys.stderr,
            )
        return result


class _NoSignaling:
    """Login needs no socket: the machine's request to open one is where
    login ends."""

    def open(self, device_code: str, access_token: str) -> None:
        return None

    async def close(self, reason: str) -> None:
        return None

    async def send_answer(self, session: SessionId, sdp: str) -> None:
        return None

    async def send_ice(self, session: SessionId, candidate: IceCandidate | None) -> None:
        return None


class _NoMedia:
    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None:
        return None

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None:
        return None

    async def close(self, peer: PeerId) -> None:
        return None

    async def close_all(self) -> None:
        return None


class _NoCamera:
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def login_only(config: Config, secrets: RedactingFilter) -> int:
    """Run the device flow (or a refresh) until a usable grant is stored; the
    exit code for ``intercom-fsm login``."""
    secrets.add(*config_secrets(config))
    inbox = Inbox()
    store = TokenStore(config.token_file)
    async with aiohttp.ClientSession() as session:
        auth = _WatchedAuth(AuthClient(session, auth_settings(config)), inbox)
        adapters = Adapters(
            auth=auth,
            tokens=store,
            signaling=_NoSignaling(),
            peers=_NoMedia(),
            camera=_NoCamera(),
            prompt=prompt,
        )
        machine = LifecycleMachine(settings=machine_settings(config))
        runtime = Runtime(
            machine,
            inbox,
            adapters,
            secrets=secrets,
            stop_when=lambda m: m.state is State.CONNECTING,
        )
        remove_handlers = install_signal_handlers(inbox)
        try:
            await runtime.run(ev.Started(await load_tokens(store)))
        finally:
            remove_handlers()
        authorized = machine.context.tokens is not None and runtime.store_failures == 0
    if auth.rejected is not None:
        rejected = auth.rejected
        said = f": {rejected.description}" if rejected.description else ""
        print(
            f"not authorized: the server rejects this client ({rejected.error}{said}); "
            "check OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET",
            file=sys.stderr,
        )
        return EXIT_CLIENT_REJECTED
    if authorized:
        print(f"authorized: tokens stored in {config.token_file}", file=sys.stderr)
        return EXIT_OK
    print("not authorized", file=sys.stderr)
    return EXIT_FAILURE
