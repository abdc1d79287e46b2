"""The daemon's wiring: configuration in, real adapters around the machine.

``run_daemon`` is what ``intercom-fsm run`` runs (``intercom-fsm login`` is
:mod:`.login`). This is the one place that
reads :class:`~intercom_fsm.config.Config`: each adapter gets its own settings
class, built here (``*_settings(config)``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp

from intercom_fsm import events as ev
from intercom_fsm.adapters.auth import AuthClient, AuthSettings, default_device_os
from intercom_fsm.adapters.signaling import SignalingSettings
from intercom_fsm.adapters.token_store import TokenStore
from intercom_fsm.adapters.user_prompt import show_user_code
from intercom_fsm.config import Config, IceTransportPolicy, NoiseSuppression
from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.daemon.operations import OperationsSettings, start_operations
from intercom_fsm.daemon.runtime import Adapters, Runtime
from intercom_fsm.effects import ShowUserCode
from intercom_fsm.machine import BackoffPolicy, LifecycleMachine, MachineSettings
from intercom_fsm.redact import RedactingFilter

if TYPE_CHECKING:
    from intercom_fsm.adapters.audio.settings import AudioSettings
    from intercom_fsm.adapters.camera import CameraSettings
    from intercom_fsm.adapters.peer import PeerSettings

logger = logging.getLogger(__name__)


def auth_settings(config: Config) -> AuthSettings:
    oauth = config.oauth
    return AuthSettings(
        http_base_url=config.endpoints.http_base_url,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        scope=oauth.scope,
        device_type=oauth.device_type,
        device_os=oauth.device_os or default_device_os(),
        timeout=config.http_timeout_seconds,
        allow_insecure_transport=config.endpoints.allow_insecure_transport,
    )


def signaling_settings(config: Config) -> SignalingSettings:
    return SignalingSettings(
        ws_base_url=config.endpoints.websocket_base_url,
        allow_insecure_transport=config.endpoints.allow_insecure_transport,
    )


def camera_settings(config: Config) -> CameraSettings:
    from intercom_fsm.adapters.camera import CameraSettings

    video = config.video
    return CameraSettings(
        source=video.source,
        width=video.width,
        height=video.height,
        fps=video.fps,
        shared_encoder=video.shared_encoder,
        bitrate=video.bitrate,
        rtsp_transport=video.rtsp_transport.value,
        rtsp_reader=video.rtsp_reader.value,
        network_timeout=video.network_timeout_seconds,
        h264_passthrough=video.h264_passthrough,
        h264_encoder=video.h264_encoder.value,
    )


def peer_settings(config: Config) -> PeerSettings:
    from intercom_fsm.adapters.peer import IceServer, PeerSettings

    servers = tuple(
        IceServer(entry.urls, username=entry.username, credential=entry.credential)
        for entry in config.webrtc.ice_servers
    )
    relay_only = config.webrtc.ice_transport_policy is IceTransportPolicy.RELAY
    return PeerSettings(servers, config.video.codec.value, relay_only=relay_only)


def operations_from_config(
    config: Config, environ: Mapping[str, str] = os.environ
) -> OperationsSettings:
    """The health endpoint as configured; systemd's notify socket and watchdog
    from ``environ``, where systemd puts them."""
    return OperationsSettings.from_health(config.health, environ)


def config_secrets(config: Config) -> tuple[str | None, ...]:
    """What no log line may carry from the configuration: the client secret
    and the TURN servers' usernames and credentials."""
    turn = (
        value for entry in config.webrtc.ice_servers for value in (entry.username, entry.credential)
    )
    return (config.oauth.client_secret, *turn)


def machine_settings(config: Config) -> MachineSettings:
    from intercom_fsm.adapters.audio.settings import NoDevice

    audio = audio_settings(config)
    return MachineSettings(
        backoff=BackoffPolicy(base=config.backoff.base_seconds, cap=config.backoff.cap_seconds),
        max_viewers=config.webrtc.max_viewers,
        session_orphan_grace=config.webrtc.session_orphan_seconds,
        microphone=not isinstance(audio.microphone, NoDevice),
        speaker=not isinstance(audio.speaker, NoDevice),
    )


def audio_settings(config: Config) -> AudioSettings:
    from intercom_fsm.adapters.audio.settings import AudioSettings

    audio = config.audio
    levels = [level for level in NoiseSuppression if level is not NoiseSuppression.OFF]
    suppression = audio.noise_suppression
    return AudioSettings(
        source=audio.source,
        sink=audio.sink,
        echo=audio.echo.value,
        noise_suppression=suppression is not NoiseSuppression.OFF,
        noise_level=levels.index(suppression) if suppression in levels else 0,
        gain_control=audio.gain_control,
        bitrate=audio.bitrate,
        playout_target_ms=audio.playout_ms,
        device_latency_ms=audio.device_latency_ms,
    )


def apply_bitrate(bitrate: int | None) -> None:
    """aiortc has no bitrate API: its encoders start from module constants and
    then follow the receiver's estimate, within the module's bounds."""
    if bitrate is None:
        return
    from aiortc.codecs import h264, vpx

    for codec in (vpx, h264):
        setattr(codec, "DEFAULT_BITRATE", bitrate)  # noqa: B010
        setattr(codec, "MIN_BITRATE", min(getattr(codec, "MIN_BITRATE"), bitrate))  # noqa: B009, B010
        setattr(codec, "MAX_BITRATE", max(getattr(codec, "MAX_BITRATE"), bitrate))  # noqa: B009, B010


def prompt(effect: ShowUserCode) -> None:
    show_user_code(effect, sys.stderr, interactive=sys.stderr.isatty())


async def load_tokens(store: TokenStore) -> ev.StoredTokens | None:
    loaded = await asyncio.to_thread(store.load)
    if loaded.tightened:
        logger.warning("token file permissions were too open; tightened to 0600")
    if loaded.problem:
        # The words are the behaviour: no token of a file with a problem is used.
        logger.error("stored tokens not usable, starting a new device flow: %s", loaded.problem)
        return None
    return loaded.tokens


def install_signal_handlers(inbox: Inbox) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(
            number, inbox.post, ev.ShutdownRequested(f"{signal.Signals(number).name} received")
        )

    def remove() -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)

    return remove


async def run_daemon(
    config: Config,
    secrets: RedactingFilter,
    *,
    stop_after: float | None = None,
    operations_settings: OperationsSettings | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop_after`` seconds); 0 on a clean stop.
    ``operations_settings`` replaces the configured health endpoint and
    systemd settings."""
    from intercom_fsm.adapters.audio import Audio
    from intercom_fsm.adapters.camera import Camera
    from intercom_fsm.adapters.peer import PeerConnections
    from intercom_fsm.adapters.peer_audio import PeerAudio
    from intercom_fsm.adapters.signaling import SignalingClient

    apply_bitrate(config.video.bitrate)
    secrets.add(*config_secrets(config))
    inbox = Inbox()
    store = TokenStore(config.token_file)
    async with aiohttp.ClientSession() as session:
        camera = Camera(camera_settings(config), inbox.post)
        audio = Audio(audio_settings(config), inbox.post)
        door_audio = audio if audio.has_microphone or audio.has_speaker else None
        peers = PeerConnections(peer_settings(config), camera, inbox.post, PeerAudio(door_audio))
        adapters = Adapters(
            auth=AuthClient(session, auth_settings(config)),
            tokens=store,
            signaling=SignalingClient(session, signaling_settings(config), inbox.post),
            peers=peers,
            camera=camera,
            prompt=prompt,
            audio=door_audio,
        )
        machine = LifecycleMachine(settings=machine_settings(config))
        runtime = Runtime(machine, inbox, adapters, secrets=secrets)
        operations = await start_operations(
            machine,
            camera_stats=lambda: camera.stats,
            audio_stats=(lambda: audio.stats) if door_audio is not None else None,
            media_lines=lambda: camera.media_path().lines,
            peer_count=lambda: len(peers),
            settings=operations_settings or operations_from_config(config),
        )
        remove_handlers = install_signal_handlers(inbox)
        if stop_after is not None:
            asyncio.get_running_loop().call_later(
                stop_after, inbox.post, ev.ShutdownRequested(f"ran for {stop_after:g} s")
            )
        try:
            await runtime.run(ev.Started(await load_tokens(store)))
        finally:
            remove_handlers()
            await operations.stop()
    return 0
