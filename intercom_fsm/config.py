"""Settings from environment variables, validated once at start-up.

:func:`load_config` reads the variables listed in :data:`ENVIRONMENT_VARIABLES`
and returns a frozen :class:`Config`, or raises :class:`ConfigError` naming the
first variable with a wrong value (the CLI turns it into exit code 2). A value
that is empty or only whitespace counts as not set, so ``export FOO=`` in an
``.envrc`` means "use the default". Error messages quote a bad value only for
plain numbers and choices; URLs (which may carry credentials), paths and
secrets are never echoed.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

DEFAULT_OAUTH_FILE = Path("~/.config/intercom-api/oauth.json")
DEFAULT_TOKEN_FILE = "~/.config/intercomclient/tokens.json"
LOOPBACK_NAMES = frozenset({"localhost"})


class ConfigError(Exception):
    """A setting is missing or wrong. ``str()`` names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class VideoCodec(enum.Enum):
    AUTO = "auto"
    VP8 = "vp8"
    H264 = "h264"


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


@attrs.frozen
class Endpoints:
    http_base_url: str
    websocket_base_url: str
    allow_insecure_transport: bool = False


@attrs.frozen
class OAuthSettings:
    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None
    device_type: str = "camera"
    device_os: str = attrs.field(factory=lambda: default_device_os())


@attrs.frozen
class VideoSettings:
    source: str = "0"
    width: int = 320
    height: int = 240
    fps: float = 5.0
    codec: VideoCodec = VideoCodec.AUTO
    bitrate: int | None = None
    shared_encoder: bool = True


@attrs.frozen
class IceServer:
    """One RTCIceServer entry."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class WebRtcSettings:
    ice_servers: tuple[IceServer, ...] = ()
    max_viewers: int = 4


@attrs.frozen
class BackoffSettings:
    base_seconds: float = 1.0
    cap_seconds: float = 60.0


@attrs.frozen
class LoggingSettings:
    level: str = "INFO"
    format: LogFormat = LogFormat.TEXT


@attrs.frozen
class Config:
    endpoints: Endpoints
    oauth: OAuthSettings
    token_file: Path
    video: VideoSettings = VideoSettings()
    webrtc: WebRtcSettings = WebRtcSettings()
    backoff: BackoffSettings = BackoffSettings()
    http_timeout_seconds: float = 10.0
    logging: LoggingSettings = LoggingSettings()


def default_device_os() -> str:
    """The platform string sent as ``device_os``, e.g. ``Linux-6.1.0-aarch64``."""
    parts = (platform.system(), platform.release(), platform.machine())
    return "-".join(part for part in parts if part) or "unknown"


# --- Transport security --------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_transport_problem(url: str, allow_insecure: bool) -> str | None:
    """Why ``url`` must not carry tokens, or None when it may.

    Plain http/ws is only accepted for loopback hosts, or everywhere when the
    operator set ``ALLOW_INSECURE_TRANSPORT=1``: otherwise a bearer token or
    the client secret would cross the network unencrypted.
    """
    parts = urlsplit(url)
    if parts.scheme in ("https", "wss") or allow_insecure:
        return None
    if is_loopback_host(parts.hostname):
        return None
    return (
        f"plain {parts.scheme}:// to a non-loopback host would send tokens unencrypted; "
        "use https/wss, or set ALLOW_INSECURE_TRANSPORT=1 to accept that risk"
    )


# --- One parser per kind of value -------------------------------------------------------


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def parse_base_url(name: str, value: str, schemes: tuple[str, str], allow_insecure: bool) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ConfigError(name, "is not a valid URL") from None
    if parts.scheme not in schemes:
        raise ConfigError(name, f"must start with {schemes[0]}:// or {schemes[1]}://")
    if not parts.hostname:
        raise ConfigError(name, "has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(name, "must not contain credentials (user:password@)")
    if parts.query or parts.fragment:
        raise ConfigError(name, "must not contain a query (?) or fragment (#)")
    if any(char.isspace() for char in value):
        raise ConfigError(name, "must not contain whitespace")
    problem = insecure_transport_problem(value, allow_insecure)
    if problem:
        raise ConfigError(name, problem)
    return value.rstrip("/")


def parse_bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be 1 or 0 (got {_shown(value)})")


def parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(name, f"must be a whole number (got {_shown(value)})") from None
    if not low <= number <= high:
        raise ConfigError(name, f"must be between {low} and {high} (got {number})")
    return number


def parse_even_size(name: str, value: str) -> int:
    number = parse_int(name, value, 16, 4096)
    if number % 2:
        raise ConfigError(name, f"must be even, video encoders need it (got {number})")
    return number


def parse_seconds(name: str, value: str, low: float, high: float, low_inclusive: bool) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number (got {_shown(value)})") from None
    below = number < low if low_inclusive else number <= low
    if not math.isfinite(number) or below or number > high:
        bound = ">=" if low_inclusive else ">"
        raise ConfigError(name, f"must be {bound} {low:g} and <= {high:g} (got {_shown(value)})")
    return number


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.lower()
    if lowered not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)} (got {_shown(value)})")
    return lowered


def parse_visible_text(name: str, value: str, *, secret: bool = False) -> str:
    """RFC 6749 VSCHAR text (printable ASCII): client ids, secrets, device type."""
    if not all(0x20 <= ord(char) <= 0x7E for char in value):
        shown = "" if secret else f" (got {_shown(value)})"
        raise ConfigError(name, f"must contain only printable ASCII characters{shown}")
    return value


def parse_scope(name: str, value: str) -> str:
    """Space-separated scope tokens (RFC 6749 section 3.3)."""
    tokens = value.split()
    for token in tokens:
        if any(not 0x21 <= ord(char) <= 0x7E or char in '"\\' for char in token):
            raise ConfigError(name, f"scope {_shown(token)} contains a character OAuth forbids")
    return " ".join(tokens)


def parse_log_level(name: str, value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            name, f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {_shown(value)})"
        )
    return level


def parse_token_path(name: str, value: str) -> Path:
    path = Path(value).expanduser()
    if value.endswith("/") or path.is_dir():
        raise ConfigError(name, "names a directory; give the path of the token file")
    return path.absolute()


def parse_ice_servers(name: str, value: str) -> tuple[IceServer, ...]:
    """A JSON list of RTCIceServer objects, or comma-separated stun:/turn: URLs.

    Messages point at the entry and key, never at a value: entries may hold
    TURN credentials.
    """
    if value.startswith("["):
        try:
            entries = json.loads(value)
        except ValueError:
            raise ConfigError(name, "starts with '[' but is not valid JSON") from None
        if not isinstance(entries, list):
            raise ConfigError(name, "must be a JSON list")
        return tuple(_ice_server_from_json(name, index, e) for index, e in enumerate(entries, 1))
    servers = []
    for index, url in enumerate((u.strip() for u in value.split(",")), 1):
        _check_ice_url(name, index, url)
        if url.startswith(("turn:", "turns:")):
            raise ConfigError(
                name,
                f"entry {index}: a TURN server needs a username and credential; use the JSON form",
            )
        servers.append(IceServer(urls=(url,)))
    return tuple(servers)


_ICE_KEYS = frozenset({"urls", "username", "credential"})


def _ice_server_from_json(name: str, index: int, entry: Any) -> IceServer:
    where = f"entry {index}"
    if not isinstance(entry, dict):
        raise ConfigError(name, f"{where} must be an object with 'urls'")
    unknown = sorted(str(key) for key in entry if key not in _ICE_KEYS)
    if unknown:
        raise ConfigError(name, f"{where} has unknown key(s) {', '.join(unknown)[:60]}")
    urls = entry.get("urls")
    url_list = [urls] if isinstance(urls, str) else urls
    if not isinstance(url_list, list) or not url_list:
        raise ConfigError(name, f"{where}: 'urls' must be a URL or a non-empty list of URLs")
    for url in url_list:
        if not isinstance(url, str):
            raise ConfigError(name, f"{where}: every URL in 'urls' must be a string")
        _check_ice_url(name, index, url)
    username, credential = entry.get("username"), entry.get("credential")
    for key, field in (("username", username), ("credential", credential)):
        if field is not None and not isinstance(field, str):
            raise ConfigError(name, f"{where}: '{key}' must be a string")
    needs_credentials = any(url.startswith(("turn:", "turns:")) for url in url_list)
    if needs_credentials and not (username and credential):
        raise ConfigError(name, f"{where}: a TURN server needs 'username' and 'credential'")
    return IceServer(urls=tuple(url_list), username=username, credential=credential)


def _check_ice_url(name: str, index: int, url: str) -> None:
    scheme, _, rest = url.partition(":")
    if scheme not in ("stun", "turn", "turns") or not rest.strip("/"):
        raise ConfigError(name, f"entry {index} must be a stun:, turn: or turns: URL with a host")
    if any(char.isspace() for char in url):
        raise ConfigError(name, f"entry {index} contains whitespace")


# --- OAuth credentials file ---------------------------------------------------------------


def _read_oauth_file(path: Path) -> dict[str, str] | None:
    """``{"client_id", "client_secret"?}`` from the file, None when it does not exist."""
    label = f"OAuth credentials file {path}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(label, f"cannot be read ({error.strerror})") from None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ConfigError(label, "is not valid JSON") from None
    if not isinstance(document, dict):
        raise ConfigError(label, 'must be a JSON object {"client_id": ..., "client_secret": ...}')
    found: dict[str, str] = {}
    for key in ("client_id", "client_secret"):
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(label, f"'{key}' must be a string")
        if value and value.strip():
            found[key] = parse_visible_text(f"{label}: {key}", value.strip(), secret=True)
    return found


def _oauth_settings(env: Callable[[str], str | None], oauth_file: Path | None) -> OAuthSettings:
    """Environment variables win; the file fills in what they leave out. Its
    secret is only used with its own client id, never paired with another."""
    client_id = env("OAUTH_CLIENT_ID")
    client_secret = env("OAUTH_CLIENT_SECRET")
    if client_id is not None:
        client_id = parse_visible_text("OAUTH_CLIENT_ID", client_id)
    if client_secret is not None:
        client_secret = parse_visible_text("OAUTH_CLIENT_SECRET", client_secret, secret=True)
    from_file = None
    if oauth_file is not None and (client_id is None or client_secret is None):
        from_file = _read_oauth_file(oauth_file.expanduser())
    if from_file is not None:
        file_id = from_file.get("client_id")
        if client_id is None:
            client_id = file_id
        if client_secret is None and file_id == client_id:
            client_secret = from_file.get("client_secret")
    if client_id is None:
        where = f" and {oauth_file} has no client_id" if oauth_file is not None else ""
        raise ConfigError("OAUTH_CLIENT_ID", f"is required (not set{where})")
    scope = env("OAUTH_SCOPE")
    device_type = env("DEVICE_TYPE")
    device_os = env("DEVICE_OS")
    return OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scope=parse_scope("OAUTH_SCOPE", scope) if scope else None,
        device_type=parse_visible_text("DEVICE_TYPE", device_type or _DEFAULTS["DEVICE_TYPE"]),
        device_os=parse_visible_text("DEVICE_OS", device_os) if device_os else default_device_os(),
    )


# --- Loading ----------------------------------------------------------------------------


def load_config(
    environ: Mapping[str, str],
    *,
    oauth_file: Path | None = DEFAULT_OAUTH_FILE,
    validate_video_source: Callable[[str], object] | None = None,
) -> Config:
    """Build the :class:`Config` from ``environ``; raise :class:`ConfigError`
    on the first wrong value. ``validate_video_source`` (the camera adapter's
    check) may raise ValueError, which is reported against ``VIDEO_SOURCE``."""

    def env(name: str) -> str | None:
        value = environ.get(name)
        return value.strip() if value and value.strip() else None

    def required(name: str) -> str:
        value = env(name)
        if value is None:
            raise ConfigError(name, "is required but not set")
        return value

    insecure_value = env("ALLOW_INSECURE_TRANSPORT")
    insecure = parse_bool("ALLOW_INSECURE_TRANSPORT", insecure_value) if insecure_value else False
    endpoints = Endpoints(
        http_base_url=parse_base_url(
            "HTTP_API_BASE_URL", required("HTTP_API_BASE_URL"), ("https", "http"), insecure
        ),
        websocket_base_url=parse_base_url(
            "WEBSOCKET_API_BASE_URL", required("WEBSOCKET_API_BASE_URL"), ("wss", "ws"), insecure
        ),
        allow_insecure_transport=insecure,
    )

    def setting(name: str, parse: Callable[[str, str], Any]) -> Any:
        """The variable's value, or its documented default, parsed."""
        value = env(name) or _DEFAULTS[name]
        return parse(name, value)

    video_source = env("VIDEO_SOURCE") or _DEFAULTS["VIDEO_SOURCE"]
    if validate_video_source is not None:
        try:
            validate_video_source(video_source)
        except ValueError as error:
            raise ConfigError(
                "VIDEO_SOURCE", str(error) or "is not a usable video source"
            ) from None
    bitrate = env("VIDEO_BITRATE")
    video = VideoSettings(
        source=video_source,
        width=setting("VIDEO_WIDTH", parse_even_size),
        height=setting("VIDEO_HEIGHT", parse_even_size),
        fps=setting("VIDEO_FPS", lambda n, v: parse_seconds(n, v, 0, 60, False)),
        codec=VideoCodec(setting("VIDEO_CODEC", lambda n, v: parse_choice(n, v, _CODECS))),
        bitrate=parse_int("VIDEO_BITRATE", bitrate, 16_000, 50_000_000) if bitrate else None,
        shared_encoder=setting("VIDEO_SHARED_ENCODER", parse_bool),
    )
    base = setting("BACKOFF_BASE_SECONDS", lambda n, v: parse_seconds(n, v, 0, 3600, False))
    cap = setting("BACKOFF_CAP_SECONDS", lambda n, v: parse_seconds(n, v, 0, 86400, False))
    if cap < base:
        raise ConfigError("BACKOFF_CAP_SECONDS", f"must be >= BACKOFF_BASE_SECONDS ({base:g})")
    return Config(
        endpoints=endpoints,
        oauth=_oauth_settings(env, oauth_file),
        token_file=setting("TOKEN_FILE_PATH", parse_token_path),
        video=video,
        webrtc=WebRtcSettings(
            ice_servers=parse_ice_servers("ICE_SERVERS", env("ICE_SERVERS") or "[]"),
            max_viewers=setting("MAX_VIEWERS", lambda n, v: parse_int(n, v, 1, 32)),
        ),
        backoff=BackoffSettings(base_seconds=base, cap_seconds=cap),
        http_timeout_seconds=setting(
            "HTTP_TIMEOUT_SECONDS", lambda n, v: parse_seconds(n, v, 0, 300, False)
        ),
        logging=LoggingSettings(
            level=setting("LOG_LEVEL", parse_log_level),
            format=LogFormat(setting("LOG_FORMAT", lambda n, v: parse_choice(n, v, _LOG_FORMATS))),
        ),
    )


_CODECS = tuple(codec.value for codec in VideoCodec)
_LOG_FORMATS = tuple(log_format.value for log_format in LogFormat)


# --- The documented table ---------------------------------------------------------------


@attrs.frozen
class EnvironmentVariable:
    """One row of the settings table the README and ``.envrc.example`` show."""

    name: str
    default: str | None
    meaning: str
    required: bool = False
    secret: bool = False


_ROWS: tuple[tuple[str, str | None, str], ...] = (
    ("HTTP_API_BASE_URL", None, "Backend base URL for OAuth, e.g. https://api.example.com."),
    ("WEBSOCKET_API_BASE_URL", None, "Backend base URL for signaling, e.g. wss://api.example.com."),
    ("ALLOW_INSECURE_TRANSPORT", "0", "1 allows plain http/ws to non-loopback hosts (unsafe)."),
    ("OAUTH_CLIENT_ID", None, "Client id; if unset, from ~/.config/intercom-api/oauth.json."),
    ("OAUTH_CLIENT_SECRET", None, "Client secret of a confidential client; or in oauth.json."),
    ("OAUTH_SCOPE", None, "Space-separated scopes to request."),
    ("DEVICE_TYPE", "camera", "Sent as device_type in the device flow."),
    ("DEVICE_OS", None, "Sent as device_os; unset: this machine's, e.g. Linux-6.1.0-aarch64."),
    ("TOKEN_FILE_PATH", DEFAULT_TOKEN_FILE, "Token file (file 0600, directory 0700)."),
    ("VIDEO_SOURCE", "0", "Camera index, device path, file, http(s)/rtsp URL, or testsrc."),
    ("VIDEO_WIDTH", "320", "Frame width in pixels, even, 16..4096."),
    ("VIDEO_HEIGHT", "240", "Frame height in pixels, even, 16..4096."),
    ("VIDEO_FPS", "5", "Frames per second, more than 0 and at most 60."),
    ("VIDEO_CODEC", "auto", "Preferred codec: auto, vp8 or h264."),
    (
        "VIDEO_BITRATE",
        None,
        "Target bits/s, 16000..50000000; unset: 0.1 bit/pixel/frame, shared encoder.",
    ),
    (
        "VIDEO_SHARED_ENCODER",
        "1",
        "1: VP8 viewers share one encoder at a fixed bitrate; 0: one each, following REMB.",
    ),
    ("ICE_SERVERS", None, "STUN/TURN: JSON list of {urls, username, credential} or stun: URLs."),
    ("MAX_VIEWERS", "4", "Concurrent viewer sessions, 1..32."),
    ("BACKOFF_BASE_SECONDS", "1", "First retry delay after a failure."),
    ("BACKOFF_CAP_SECONDS", "60", "Longest retry delay; at least BACKOFF_BASE_SECONDS."),
    ("HTTP_TIMEOUT_SECONDS", "10", "Total timeout of each OAuth request, up to 300."),
    ("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    ("LOG_FORMAT", "text", "text (one line per event) or json."),
    ("HEALTH_ADDRESS", None, "host:port for /healthz and /metrics, e.g. 127.0.0.1:9108."),
    ("HEALTH_ALLOW_REMOTE", "0", "1 allows a non-loopback HEALTH_ADDRESS (no authentication)."),
    ("HEALTH_STUCK_SECONDS", "300", "/healthz is 503 after this long not Negotiating/Streaming."),
)
_REQUIRED = frozenset({"HTTP_API_BASE_URL", "WEBSOCKET_API_BASE_URL", "OAUTH_CLIENT_ID"})
# Values that may hold credentials: never echoed, never printed by `status`.
_SECRET = frozenset({"OAUTH_CLIENT_SECRET", "ICE_SERVERS"})

ENVIRONMENT_VARIABLES: tuple[EnvironmentVariable, ...] = tuple(
    EnvironmentVariable(name, default, meaning, name in _REQUIRED, name in _SECRET)
    for name, default, meaning in _ROWS
)
"""Every variable :func:`load_config` reads, in the order the README lists them.
``OAUTH_CLIENT_ID``/``OAUTH_CLIENT_SECRET`` may instead come from
``~/.config/intercom-api/oauth.json`` (``{"client_id", "client_secret"}``);
the environment wins."""

_DEFAULTS = {v.name: v.default for v in ENVIRONMENT_VARIABLES if v.default is not None}


def environment_table_markdown() -> str:
    """The table for the README."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable in ENVIRONMENT_VARIABLES:
        default = "(required)" if variable.required else (variable.default or "(unset)")
        lines.append(f"| `{variable.name}` | {default} | {variable.meaning} |")
    return "\n".join(lines) + "\n"


def envrc_example() -> str:
    """An ``.envrc.example``: required variables with placeholders, the others
    commented out at their defaults."""
    lines = ["# intercom-fsm settings (copy to .envrc and edit)."]
    placeholders = {
        "HTTP_API_BASE_URL": "https://api.example.com",
        "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
        "OAUTH_CLIENT_ID": "your-client-id",
    }
    for variable in ENVIRONMENT_VARIABLES:
        lines.append(f"# {variable.meaning}")
        if variable.name in placeholders:
            lines.append(f"export {variable.name}={placeholders[variable.name]}")
        else:
            lines.append(f"# export {variable.name}={variable.default or ''}")
    return "\n".join(lines) + "\n"
