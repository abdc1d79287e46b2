"""Settings from environment variables, validated once at start-up.

Each variable is one row of :data:`ENVIRONMENT_VARIABLES`: its name, the field
of :class:`Config` it fills, its parser (which carries the bounds, see
:mod:`intercom_fsm.config_values`), its default as the README shows it, and
its one-line doc. :func:`load_config` is a loop over the rows, then the few
rules that involve two variables (:data:`CROSS_CHECKS`), and returns a frozen
:class:`Config`, or raises :class:`ConfigError` naming the variable with a
wrong value (the CLI turns it into exit code 2). A value that is empty or only
whitespace counts as not set, so ``export FOO=`` in an ``.envrc`` means "use
the default". The README's configuration table and ``.envrc.example`` are
drawn from the same rows (:mod:`intercom_fsm.config_docs`; a test keeps them in
step).

Adding a variable is adding a row here and the field it fills in its section;
the daemon's wiring (:mod:`intercom_fsm.daemon.app`) hands the value to the
adapter that needs it. Adapters never import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from intercom_fsm.config_choices import AudioEcho as AudioEcho
from intercom_fsm.config_choices import H264Encoder as H264Encoder
from intercom_fsm.config_choices import IceTransportPolicy as IceTransportPolicy
from intercom_fsm.config_choices import LogFormat as LogFormat
from intercom_fsm.config_choices import NoiseSuppression as NoiseSuppression
from intercom_fsm.config_choices import RtspReader as RtspReader
from intercom_fsm.config_choices import RtspTransport as RtspTransport
from intercom_fsm.config_choices import VideoCodec as VideoCodec
from intercom_fsm.config_values import (
    BaseUrl,
    Choice,
    FilePath,
    Flag,
    HostPort,
    IceServers,
    Integer,
    LogLevel,
    Number,
    Parser,
    Scope,
    Text,
    VisibleText,
)
from intercom_fsm.config_values import ConfigError as ConfigError
from intercom_fsm.config_values import HealthAddress as HealthAddress
from intercom_fsm.config_values import IceServerEntry as IceServerEntry
from intercom_fsm.oauth_file import read_oauth_file
from intercom_fsm.transport_policy import insecure_transport_problem, is_loopback_host

DEFAULT_OAUTH_FILE = Path("~/.config/intercom-api/oauth.json")


# --- What the rows fill: the sections of Config (no defaults: the rows have them) -----


@attrs.frozen
class Endpoints:
    http_base_url: str
    websocket_base_url: str
    allow_insecure_transport: bool


@attrs.frozen
class OAuthSettings:
    client_id: str
    client_secret: str | None = attrs.field(repr=False)
    scope: str | None
    device_type: str
    device_os: str | None
    """None: the auth adapter sends this machine's platform string."""


@attrs.frozen
class VideoSettings:
    source: str
    width: int
    height: int
    fps: float
    codec: VideoCodec
    bitrate: int | None
    shared_encoder: bool
    rtsp_transport: RtspTransport
    rtsp_reader: RtspReader
    network_timeout_seconds: float
    h264_passthrough: bool
    h264_encoder: H264Encoder


@attrs.frozen
class AudioConfig:
    source: str
    """As written; the audio adapter's parser checked it (``tone:HZ``, ALSA names)."""
    sink: str
    echo: AudioEcho
    noise_suppression: NoiseSuppression
    gain_control: bool
    bitrate: int
    playout_ms: float
    device_latency_ms: float


@attrs.frozen
class WebRtcSettings:
    ice_servers: tuple[IceServerEntry, ...]
    ice_transport_policy: IceTransportPolicy
    max_viewers: int
    session_orphan_seconds: float


@attrs.frozen
class BackoffSettings:
    base_seconds: float
    cap_seconds: float


@attrs.frozen
class LoggingSettings:
    level: str
    format: LogFormat


@attrs.frozen
class HealthSettings:
    address: HealthAddress | None
    """Where ``/healthz`` and ``/metrics`` listen; None: no endpoint."""
    allow_remote: bool
    stuck_seconds: float


@attrs.frozen
class Config:
    endpoints: Endpoints
    oauth: OAuthSettings
    token_file: Path
    video: VideoSettings
    audio: AudioConfig
    webrtc: WebRtcSettings
    backoff: BackoffSettings
    http_timeout_seconds: float
    logging: LoggingSettings
    health: HealthSettings


# --- The rows ---------------------------------------------------------------------------


@attrs.frozen
class Setting:
    """One environment variable: one row of the README's table."""

    name: str
    field: str
    """Where the value goes: ``"video.width"`` is ``Config.video.width``."""
    parse: Parser[Any]
    default: str | None
    """The value when unset, as the README shows it; None: ``parse.absent``."""
    doc: str
    required: bool = False
    secret: bool = False
    """The value may hold credentials: never echoed, never printed."""

    def read(self, environ: Mapping[str, str]) -> Any:
        text = (environ.get(self.name) or "").strip() or self.default
        return self.parse.absent if text is None else self.parse(self.name, text)


S = Setting
# fmt: off
ENVIRONMENT_VARIABLES: tuple[Setting, ...] = (
    S("HTTP_API_BASE_URL", "endpoints.http_base_url", BaseUrl(("https", "http")), None,
      "Backend base URL for OAuth, e.g. https://api.example.com.", required=True),
    S("WEBSOCKET_API_BASE_URL", "endpoints.websocket_base_url", BaseUrl(("wss", "ws")), None,
      "Backend base URL for signaling, e.g. wss://api.example.com.", required=True),
    S("ALLOW_INSECURE_TRANSPORT", "endpoints.allow_insecure_transport", Flag(), "0",
      "1 allows plain http/ws to non-loopback hosts (unsafe)."),
    S("OAUTH_CLIENT_ID", "oauth.client_id", VisibleText(), None,
      "Client id; if unset, from ~/.config/intercom-api/oauth.json.", required=True),
    S("OAUTH_CLIENT_SECRET", "oauth.client_secret", VisibleText(secret=True), None,
      "Client secret of a confidential client; or in oauth.json.", secret=True),
    S("OAUTH_SCOPE", "oauth.scope", Scope(), None, "Space-separated scopes to request."),
    S("DEVICE_TYPE", "oauth.device_type", VisibleText(), "camera",
      "Sent as device_type in the device flow."),
    S("DEVICE_OS", "oauth.device_os", VisibleText(), None,
      "Sent as device_os; unset: this machine's, e.g. Linux-6.1.0-aarch64."),
    S("TOKEN_FILE_PATH", "token_file", FilePath(), "~/.config/intercomclient/tokens.json",
      "Token file (file 0600, directory 0700)."),
    S("VIDEO_SOURCE", "video.source", Text(), "0",
      "Camera index, device path, file, http(s)/rtsp URL, or testsrc."),
    S("VIDEO_WIDTH", "video.width", Integer(16, 4096, even=True), "320",
      "Frame width in pixels, even, 16..4096."),
    S("VIDEO_HEIGHT", "video.height", Integer(16, 4096, even=True), "240",
      "Frame height in pixels, even, 16..4096."),
    S("VIDEO_FPS", "video.fps", Number(0, 60), "5",
      "Frames per second, more than 0 and at most 60."),
    S("VIDEO_CODEC", "video.codec", Choice(VideoCodec), "auto",
      "Preferred codec: auto, vp8 or h264."),
    S("VIDEO_BITRATE", "video.bitrate", Integer(16_000, 50_000_000), None,
      "Ceiling bits/s, 16000..50000000: the shared VP8 encoding's high layer (its low"
      " layer is 35 % of it); unset: 0.1 bit/pixel/frame."),
    S("VIDEO_SHARED_ENCODER", "video.shared_encoder", Flag(), "1",
      "1: VP8 viewers share two encodings, high and low, each viewer on what its link"
      " carries; 0: one encoder each, following REMB."),
    S("VIDEO_RTSP_TRANSPORT", "video.rtsp_transport", Choice(RtspTransport), "tcp",
      "How an rtsp:// camera sends: tcp (one port, no loss) or udp (lower latency on a LAN)."),
    S("VIDEO_RTSP_READER", "video.rtsp_reader", Choice(RtspReader), "native",
      "Who reads an rtsp:// camera: native (its H.264 on the event loop, the least CPU;"
      " FFmpeg reads other codecs) or ffmpeg (always FFmpeg)."),
    S("VIDEO_NETWORK_TIMEOUT_SECONDS", "video.network_timeout_seconds", Number(0.1, 60, True),
      "2", "A network or V4L2 camera slower than this to open or send has failed"
      " (one read by OpenCV: in whole seconds), 0.1..60."),
    S("VIDEO_H264_PASSTHROUGH", "video.h264_passthrough", Flag(), "1",
      "1: an H.264 camera's own packets go to viewers that accept its profile; 0: re-encode."),
    S("VIDEO_H264_ENCODER", "video.h264_encoder", Choice(H264Encoder), "auto",
      "auto: a V4L2 hardware H.264 encoder when the board has one; software: libx264."),
    S("AUDIO_SOURCE", "audio.source", VisibleText(), "default",
      "Microphone: an ALSA capture device (default, hw:1,0, plughw:CARD=Device,DEV=0, any"
      " PCM), tone or tone:HZ (a test tone), or none."),
    S("AUDIO_SINK", "audio.sink", VisibleText(), "default",
      "Speaker for the viewers' voices: an ALSA playback device, or none."),
    S("AUDIO_ECHO", "audio.echo", Choice(AudioEcho), "cancel",
      "cancel (an echo canceller), half-duplex (microphone lowered while a viewer talks), off."),
    S("AUDIO_NOISE_SUPPRESSION", "audio.noise_suppression", Choice(NoiseSuppression),
      "moderate", "Noise suppression on the microphone: off, low, moderate, high, very-high."),
    S("AUDIO_GAIN_CONTROL", "audio.gain_control", Flag(), "0",
      "1: automatic gain control on the microphone; 0: its level is set once."),
    S("AUDIO_BITRATE", "audio.bitrate", Integer(6_000, 510_000), "32000",
      "Opus bits/s of the microphone (one encoding for every viewer), 6000..510000."),
    S("AUDIO_PLAYOUT_MS", "audio.playout_ms", Number(10, 60, True), "40",
      "Playout buffer per talking viewer, 10..60 ms: talk-back never builds up delay."),
    S("AUDIO_DEVICE_LATENCY_MS", "audio.device_latency_ms", Number(10, 200, True), "40",
      "The ALSA buffer asked of the speaker (half of it of the microphone), 10..200 ms."),
    S("ICE_SERVERS", "webrtc.ice_servers", IceServers(), None,
      "STUN/TURN: JSON list of {urls, username, credential} or stun: URLs.", secret=True),
    S("ICE_TRANSPORT_POLICY", "webrtc.ice_transport_policy", Choice(IceTransportPolicy), "all",
      "all: every candidate; relay: media only through the TURN server of ICE_SERVERS"
      " (the device's addresses stay private)."),
    S("MAX_VIEWERS", "webrtc.max_viewers", Integer(1, 32), "4",
      "Concurrent viewer sessions, 1..32."),
    S("SESSION_ORPHAN_SECONDS", "webrtc.session_orphan_seconds", Number(0, 3600, True), "60",
      "A call whose media flows outlives a lost signaling socket this long, 0..3600."),
    S("BACKOFF_BASE_SECONDS", "backoff.base_seconds", Number(0, 3600), "1",
      "First retry delay after a failure."),
    S("BACKOFF_CAP_SECONDS", "backoff.cap_seconds", Number(0, 86400), "60",
      "Longest retry delay; at least BACKOFF_BASE_SECONDS."),
    S("HTTP_TIMEOUT_SECONDS", "http_timeout_seconds", Number(0, 300), "10",
      "Total timeout of each OAuth request, up to 300."),
    S("LOG_LEVEL", "logging.level", LogLevel(), "INFO",
      "DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    S("LOG_FORMAT", "logging.format", Choice(LogFormat), "text",
      "text (one line per event) or json."),
    S("HEALTH_ADDRESS", "health.address", HostPort(), None,
      "host:port for /healthz and /metrics, e.g. 127.0.0.1:9108."),
    S("HEALTH_ALLOW_REMOTE", "health.allow_remote", Flag(), "0",
      "1 allows a non-loopback HEALTH_ADDRESS (no authentication)."),
    S("HEALTH_STUCK_SECONDS", "health.stuck_seconds", Number(0, 7 * 86400), "300",
      "/healthz is 503 after this long not Negotiating/Streaming."),
)
"""Every variable :func:`load_config` reads, in the order the README lists them.
``OAUTH_CLIENT_ID``/``OAUTH_CLIENT_SECRET`` may instead come from
``~/.config/intercom-api/oauth.json`` (``{"client_id", "client_secret"}``);
the environment wins."""
# fmt: on

_BY_NAME = {setting.name: setting for setting in ENVIRONMENT_VARIABLES}


def default_value(name: str) -> Any:
    """The parsed default of a variable, for code that needs it without an
    environment (the default is written once, in its row)."""
    return _BY_NAME[name].read({})


# --- The rules that involve two variables -------------------------------------------------

Values = dict[str, Any]
"""Parsed values by variable name."""


def _transport_is_safe(values: Values) -> None:
    for name in ("HTTP_API_BASE_URL", "WEBSOCKET_API_BASE_URL"):
        url = values[name]
        problem = insecure_transport_problem(url, values["ALLOW_INSECURE_TRANSPORT"])
        if url is not None and problem:
            raise ConfigError(name, problem)


def _cap_at_least_base(values: Values) -> None:
    base = values["BACKOFF_BASE_SECONDS"]
    if values["BACKOFF_CAP_SECONDS"] < base:
        raise ConfigError("BACKOFF_CAP_SECONDS", f"must be >= BACKOFF_BASE_SECONDS ({base:g})")


def _relay_has_a_turn_server(values: Values) -> None:
    if values["ICE_TRANSPORT_POLICY"] is not IceTransportPolicy.RELAY:
        return
    urls = (url for entry in values["ICE_SERVERS"] or () for url in entry.urls)
    if not any(url.startswith(("turn:", "turns:")) for url in urls):
        raise ConfigError(
            "ICE_TRANSPORT_POLICY", "relay needs a turn: or turns: server in ICE_SERVERS"
        )


def _health_on_loopback(values: Values) -> None:
    address = values["HEALTH_ADDRESS"]
    if address is None or values["HEALTH_ALLOW_REMOTE"] or is_loopback_host(address.host):
        return
    raise ConfigError(
        "HEALTH_ADDRESS",
        "must be a loopback address: the endpoint has no authentication; "
        "set HEALTH_ALLOW_REMOTE=1 to listen elsewhere",
    )


CROSS_CHECKS: tuple[Callable[[Values], None], ...] = (
    _transport_is_safe,
    _cap_at_least_base,
    _relay_has_a_turn_server,
    _health_on_loopback,
)


# --- Loading ----------------------------------------------------------------------------


def load_config(
    environ: Mapping[str, str],
    *,
    oauth_file: Path | None = DEFAULT_OAUTH_FILE,
    adapter_checks: Mapping[str, Callable[[str], object]] | None = None,
) -> Config:
    """Build the :class:`Config` from ``environ``; raise :class:`ConfigError`
    on the first wrong value. ``adapter_checks`` are the adapters' own parsers
    of a variable's text (the camera's of ``VIDEO_SOURCE``, the audio's of
    ``AUDIO_SOURCE``); a ValueError one raises is reported against its
    variable."""
    values = {setting.name: setting.read(environ) for setting in ENVIRONMENT_VARIABLES}
    _fill_from_oauth_file(values, oauth_file)
    for setting in ENVIRONMENT_VARIABLES:
        if setting.required and values[setting.name] is None:
            raise ConfigError(setting.name, "is required but not set")
    for check in CROSS_CHECKS:
        check(values)
    for name, parse in (adapter_checks or {}).items():
        try:
            parse(values[name])
        except ValueError as error:
            problem = str(error).removeprefix(f"{name}: ").removeprefix(name).strip()
            raise ConfigError(name, problem or "is not usable") from None
    return _build_config(values)


def load_health_settings(environ: Mapping[str, str]) -> HealthSettings:
    """Only the ``HEALTH_*`` rows: what ``intercom-fsm status`` and ``diagram
    --live`` need to find a running daemon."""
    rows = [s for s in ENVIRONMENT_VARIABLES if s.field.startswith("health.")]
    values = {setting.name: setting.read(environ) for setting in rows}
    _health_on_loopback(values)
    health: HealthSettings = _section(HealthSettings, values, "health.")
    return health


def _fill_from_oauth_file(values: Values, oauth_file: Path | None) -> None:
    """Environment variables win; the file fills in what they leave out. Its
    secret is only used with its own client id, never paired with another."""
    client_id, client_secret = values["OAUTH_CLIENT_ID"], values["OAUTH_CLIENT_SECRET"]
    if oauth_file is None or (client_id is not None and client_secret is not None):
        return
    found = read_oauth_file(oauth_file.expanduser())
    if found is None:
        file_id = None
    else:
        file_id = found.get("client_id")
        if client_id is None:
            values["OAUTH_CLIENT_ID"] = client_id = file_id
        if client_secret is None and file_id == client_id:
            values["OAUTH_CLIENT_SECRET"] = found.get("client_secret")
    if client_id is None:
        where = f"not set and {oauth_file} has no client_id"
        raise ConfigError("OAUTH_CLIENT_ID", f"is required ({where})")


_FIELD_OWNER = {setting.field: setting.name for setting in ENVIRONMENT_VARIABLES}


def _section(cls: type[Any], values: Values, prefix: str) -> Any:
    """One section of :class:`Config`, each field from the row that names it."""
    return cls(**{f.name: values[_FIELD_OWNER[prefix + f.name]] for f in attrs.fields(cls)})


def _build_config(values: Values) -> Config:
    fields: dict[str, Any] = {}
    for field in attrs.fields(Config):
        if isinstance(field.type, type) and attrs.has(field.type):
            fields[field.name] = _section(field.type, values, f"{field.name}.")
        else:
            fields[field.name] = values[_FIELD_OWNER[field.name]]
    return Config(**fields)


attrs.resolve_types(Config)
