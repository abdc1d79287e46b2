"""The runtime: one asyncio loop, one event queue, the machine in the middle.

Every adapter posts its events to the inbox; the runtime hands each to the
machine and carries out the effects it returns, in order. Effects that take
a network round trip (HTTP calls, creating a peer) run as tasks the runtime
owns and feed their result back as events; quick ones (sending a frame,
writing the token file, timers) are done in line, so their order holds.
Nothing an adapter does can raise into the loop: a failure is logged and, where
the machine must know, turned into an event. Problems the machine reports are
logged at most once per kind and interval (:mod:`intercom_fsm.log_limit`): a
flood of bad frames is one line with a count, not a full disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import attrs

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.daemon.logs import log_transition
from intercom_fsm.daemon.ports import (
    AudioPort,
    AuthPort,
    CameraPort,
    PeersPort,
    SignalingPort,
    TokenStorePort,
    UserPromptPort,
)
from intercom_fsm.daemon.timers import Timers
from intercom_fsm.log_limit import LogLimiter, kind_of
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.redact import RedactingFilter, one_line_text

logger = logging.getLogger(__name__)

SHUTDOWN_BUDGET = 4.0
"""Seconds the runtime gives in-flight work to finish after Stopped; the
daemon must exit within 5 s of SIGTERM."""


@attrs.define
class Adapters:
    auth: AuthPort
    tokens: TokenStorePort
    signaling: SignalingPort
    peers: PeersPort
    camera: CameraPort
    prompt: UserPromptPort
    audio: AudioPort | None = None
    """The door's microphone and speaker; None for a device without audio
    (the machine then asks for neither)."""


class Runtime:
    def __init__(
        self,
        machine: LifecycleMachine,
        inbox: Inbox,
        adapters: Adapters,
        *,
        secrets: RedactingFilter | None = None,
        stop_when: Callable[[LifecycleMachine], bool] | None = None,
        problems: LogLimiter | None = None,
    ) -> None:
        """``problems`` logs the machine's ReportProblem effects (by default at
        most one line per kind every 10 s)."""
        self.machine = machine
        self.inbox = inbox
        self.adapters = adapters
        self.timers = Timers(inbox)
        self._secrets = secrets or RedactingFilter()
        self._stop_when = stop_when
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh: asyncio.Task[None] | None = None
        self.store_failures = 0
        self._problems = problems or LogLimiter(logger)
        machine.add_listener(log_transition)

    async def run(self, start: ev.Started) -> None:
        """Run until the machine stops, then release what is still held."""
        if start.tokens is not None:
            self._remember_secrets(start.tokens)
        self.inbox.post(start)
        while not self.machine.finished:
            await self.step(await self.inbox.next())
            if self._stop_when is not None and self._stop_when(self.machine):
                self._stop_when = None
                self.inbox.post(ev.ShutdownRequested("done"))
        await self._wind_down()

    async def step(self, event: ev.Event) -> None:
        for effect in self.machine.handle(event):
            try:
                await self._carry_out(effect)
            except Exception:  # an adapter's bug must not end the daemon
                logger.exception("carrying out %s failed", type(effect).__name__)

    async def _carry_out(self, effect: fx.Effect) -> None:
        a = self.adapters
        match effect:
            case fx.RequestDeviceCode():
                self._spawn(a.auth.request_device_code(), posting=True)
            case fx.PollToken(device_code=code):
                self._secrets.add(code)
                self._spawn(a.auth.poll_token(code), posting=True)
            case fx.RefreshTokens(refresh_token=token):
                self._refresh = self._spawn(a.auth.refresh(token), posting=True)
            case fx.StoreTokens(tokens=tokens):
                await self._store(tokens)
            case fx.DiscardTokens(reason=reason):
                logger.warning("forgetting the stored tokens: %s", reason)
                await self._discard_tokens()
            case fx.ShowUserCode():
                a.prompt(effect)
            case fx.ReportProblem(message=message, kind=kind):
                self._problems.log(kind if kind != "problem" else kind_of(message), "%s", message)
            case fx.OpenSocket(device_code=code, access_token=token):
                self._secrets.add(code, token)
                a.signaling.open(code, token)
            case fx.CloseSocket(reason=reason):
                await a.signaling.close(reason)
            case fx.SendAnswer(session=session, sdp=sdp):
                await a.signaling.send_answer(session, sdp)
            case fx.SendIceCandidate(session=session, candidate=candidate):
                await a.signaling.send_ice(session, candidate)
            case fx.CreatePeer(session=session, peer=peer, offer_sdp=sdp):
                self._spawn(a.peers.create(session, peer, sdp))
            case fx.AddRemoteCandidate(session=session, peer=peer, candidate=candidate):
                self._spawn(a.peers.add_candidate(session, peer, candidate))
            case fx.ClosePeer(session=session, peer=peer, reason=reason):
                # Where a session's end (a hangup, a failed ICE check, an
                # offer that could not be applied, a setup timeout) is told
                # with its cause. A refused offer never got a peer: the
                # machine reports it as a problem instead.
                logger.info("viewer %r: closing its peer: %s", session, reason)
                self._spawn(a.peers.close(peer))
            case fx.OpenCamera():
                await a.camera.open()
            case fx.CloseCamera():
                await a.camera.close()
            case fx.OpenMicrophone() if a.audio is not None:
                await a.audio.open_microphone()
            case fx.CloseMicrophone() if a.audio is not None:
                await a.audio.close_microphone()
            case fx.OpenSpeaker() if a.audio is not None:
                await a.audio.open_speaker()
            case fx.CloseSpeaker() if a.audio is not None:
                await a.audio.close_speaker()
            case fx.ScheduleTimer():
                self.timers.schedule(effect)
            case fx.CancelTimer():
                self.timers.cancel(effect)

    async def _store(self, tokens: ev.StoredTokens) -> None:
        self._remember_secrets(tokens)
        try:
            await asyncio.to_thread(self.adapters.tokens.save, tokens)
        except Exception as error:  # disk full, read-only: keep running
            self.store_failures += 1
            self.inbox.post(ev.TokenStoreFailed(_store_problem(error)))

    async def _discard_tokens(self) -> None:
        """The file may not be removable (a read-only directory): the machine
        is told, as for a failed save, and runs on; it has already forgotten
        the grant itself."""
        try:
            await asyncio.to_thread(self.adapters.tokens.clear)
        except Exception as error:
            self.store_failures += 1
            self.inbox.post(ev.TokenStoreFailed(_store_problem(error)))

    def _remember_secrets(self, tokens: ev.StoredTokens) -> None:
        self._secrets.add(tokens.access_token, tokens.refresh_token, tokens.device_code)

    def _spawn(
        self, work: Coroutine[Any, Any, Any], *, posting: bool = False
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guarded(work, posting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A task cancelled before it ran never awaited ``work``: close it, so
        # shutdown does not warn about a coroutine that was never awaited.
        task.add_done_callback(lambda done: work.close() if done.cancelled() else None)
        return task

    async def _guarded(self, work: Awaitable[Any], posting: bool) -> None:
        try:
            result = await work
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("adapter work failed")
            return
        if isinstance(result, ev.AuthTransientError):
            # The machine only sees "failed"; the operator needs the cause
            # (connection refused, HTTP 503, a timeout, HTML instead of JSON).
            slower = result.timed_out and result.operation is ev.AuthOperation.POLL
            then = "polling less often" if slower else "will retry after a backoff"
            logger.warning("%s (%s)", result.reason, then)
        if posting and result is not None:
            self.inbox.post(result)

    async def _wind_down(self) -> None:
        """After Stopped: a refresh under way may already have rotated the
        refresh token on the server, so its answer is still taken (the machine
        stores it in Stopped); everything else is cancelled."""
        self.timers.cancel_all()
        refresh = self._refresh
        if refresh is not None and not refresh.done():
            await asyncio.wait({refresh}, timeout=SHUTDOWN_BUDGET / 2)
            while self.inbox.pending():
                await self.step(await self.inbox.next())
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_BUDGET / 2)
        # Each release stands alone: a peer that fails to close must not keep
        # the socket or the camera open.
        a = self.adapters
        releases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("peers", a.peers.close_all),
            ("signaling socket", lambda: a.signaling.close("shutdown")),
            ("camera", a.camera.close),
        ]
        if a.audio is not None:
            releases += [
                ("microphone", a.audio.close_microphone),
                ("speaker", a.audio.close_speaker),
            ]
        for what, release in releases:
            try:
                await release()
            except Exception:
                logger.exception("shutdown: closing the %s failed", what)
        self.timers.cancel_all()


def _store_problem(error: Exception) -> str:
    """The store's own words, as one line (the token store's name the file and
    the OS problem, never a token)."""
    return one_line_text(str(error)) or type(error).__name__
