"""The kinds of value a setting can hold, each a small parser carrying its bounds.

A parser is called with the variable's name and its text (already stripped,
never empty) and returns the value or raises :class:`ConfigError` naming the
variable. :attr:`Parser.absent` is the value of a variable that is not set and
has no default. Messages quote a bad value only for plain numbers and choices;
URLs (which may carry credentials), paths and secrets are never echoed.

:mod:`intercom_fsm.config` lists the variables; this module only knows values.
"""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

import attrs

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


class ConfigError(Exception):
    """A setting is missing or wrong. ``str()`` names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


class Parser(Generic[T]):
    absent: ClassVar[Any] = None
    """The value when the variable is not set and has no default."""

    def __call__(self, name: str, text: str) -> T:
        raise NotImplementedError


@attrs.frozen
class Text(Parser[str]):
    """Any text (the camera adapter checks ``VIDEO_SOURCE`` itself)."""

    def __call__(self, name: str, text: str) -> str:
        return text


@attrs.frozen
class Flag(Parser[bool]):
    def __call__(self, name: str, text: str) -> bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be 1 or 0 (got {shown(text)})")


@attrs.frozen
class Integer(Parser[int]):
    low: int
    high: int
    even: bool = False
    """Video encoders need even frame sizes."""

    def __call__(self, name: str, text: str) -> int:
        try:
            number = int(text, 10)
        except ValueError:
            raise ConfigError(name, f"must be a whole number (got {shown(text)})") from None
        if not self.low <= number <= self.high:
            raise ConfigError(name, f"must be between {self.low} and {self.high} (got {number})")
        if self.even and number % 2:
            raise ConfigError(name, f"must be even, video encoders need it (got {number})")
        return number


@attrs.frozen
class Number(Parser[float]):
    """A finite number above ``low`` (or at it, when ``low_inclusive``), at most ``high``."""

    low: float
    high: float
    low_inclusive: bool = False

    def __call__(self, name: str, text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(name, f"must be a number (got {shown(text)})") from None
        below = number < self.low if self.low_inclusive else number <= self.low
        if not math.isfinite(number) or below or number > self.high:
            bound = ">=" if self.low_inclusive else ">"
            raise ConfigError(
                name, f"must be {bound} {self.low:g} and <= {self.high:g} (got {shown(text)})"
            )
        return number


@attrs.frozen
class Choice(Parser[E]):
    """One of an enum's values, any case."""

    choices: type[E]

    def __call__(self, name: str, text: str) -> E:
        lowered = text.lower()
        for choice in self.choices:
            if choice.value == lowered:
                return choice
        listed = ", ".join(str(choice.value) for choice in self.choices)
        raise ConfigError(name, f"must be one of {listed} (got {shown(text)})")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@attrs.frozen
class LogLevel(Parser[str]):
    def __call__(self, name: str, text: str) -> str:
        level = text.upper()
        if level not in LOG_LEVELS:
            raise ConfigError(
                name, f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {shown(text)})"
            )
        return level


@attrs.frozen
class VisibleText(Parser[str]):
    """RFC 6749 VSCHAR text (printable ASCII): client ids, secrets, device type."""

    secret: bool = False

    def __call__(self, name: str, text: str) -> str:
        if not all(0x20 <= ord(char) <= 0x7E for char in text):
            said = "" if self.secret else f" (got {shown(text)})"
            raise ConfigError(name, f"must contain only printable ASCII characters{said}")
        return text


@attrs.frozen
class Scope(Parser[str]):
    """Space-separated scope tokens (RFC 6749 section 3.3)."""

    def __call__(self, name: str, text: str) -> str:
        tokens = text.split()
        for token in tokens:
            if any(not 0x21 <= ord(char) <= 0x7E or char in '"\\' for char in token):
                raise ConfigError(name, f"scope {shown(token)} contains a character OAuth forbids")
        return " ".join(tokens)


@attrs.frozen
class BaseUrl(Parser[str]):
    """A base URL with a host and nothing after the path. Whether its scheme
    may carry tokens is the configuration's cross-check (it depends on
    ``ALLOW_INSECURE_TRANSPORT``)."""

    schemes: tuple[str, str]

    def __call__(self, name: str, text: str) -> str:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            raise ConfigError(name, "is not a valid URL") from None
        if parts.scheme not in self.schemes:
            first, second = self.schemes
            raise ConfigError(name, f"must start with {first}:// or {second}://")
        if not parts.hostname:
            raise ConfigError(name, "has no host")
        if parts.username is not None or parts.password is not None:
            raise ConfigError(name, "must not contain credentials (user:password@)")
        if parts.query or parts.fragment:
            raise ConfigError(name, "must not contain a query (?) or fragment (#)")
        if any(char.isspace() for char in text):
            raise ConfigError(name, "must not contain whitespace")
        return text.rstrip("/")


@attrs.frozen
class FilePath(Parser[Path]):
    """An absolute file path (``~`` expanded); a directory is refused."""

    def __call__(self, name: str, text: str) -> Path:
        path = Path(text).expanduser()
        if text.endswith("/") or path.is_dir():
            raise ConfigError(name, "names a directory; give the path of the token file")
        return path.absolute()


@attrs.frozen
class HealthAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"


@attrs.frozen
class HostPort(Parser[HealthAddress]):
    """``host:port``, an IPv6 host in brackets (``[::1]:9108``)."""

    def __call__(self, name: str, text: str) -> HealthAddress:
        host, separator, port_text = text.rpartition(":")
        if not separator or not host:
            raise ConfigError(name, "must be host:port, e.g. 127.0.0.1:9108")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            port = int(port_text, 10)
        except ValueError:
            raise ConfigError(name, f"port must be a number (got {port_text[:10]!r})") from None
        if not 1 <= port <= 65535:
            raise ConfigError(name, f"port must be between 1 and 65535 (got {port})")
        return HealthAddress(host, port)


@attrs.frozen
class IceServerEntry:
    """One RTCIceServer entry as configured (the peer adapter has its own type)."""

    urls: tuple[str, ...]
    username: str | None = attrs.field(default=None, repr=False)
    credential: str | None = attrs.field(default=None, repr=False)


_ICE_KEYS = frozenset({"urls", "username", "credential"})


@attrs.frozen
class IceServers(Parser[tuple[IceServerEntry, ...]]):
    """A JSON list of RTCIceServer objects, or comma-separated stun: URLs.

    Messages point at the entry and key, never at a value: entries hold TURN
    credentials.
    """

    absent: ClassVar[Any] = ()

    def __call__(self, name: str, text: str) -> tuple[IceServerEntry, ...]:
        if text.startswith("["):
            try:
                entries = json.loads(text)
            except (ValueError, RecursionError):
                raise ConfigError(name, "starts with '[' but is not valid JSON") from None
            if not isinstance(entries, list):
                raise ConfigError(name, "must be a JSON list")
            return tuple(_ice_server(name, index, e) for index, e in enumerate(entries, 1))
        servers = []
        for index, url in enumerate((u.strip() for u in text.split(",")), 1):
            _check_ice_url(name, index, url)
            if url.startswith(("turn:", "turns:")):
                raise ConfigError(
                    name,
                    f"entry {index}: a TURN server needs a username and credential; "
                    "use the JSON form",
                )
            servers.append(IceServerEntry(urls=(url,)))
        return tuple(servers)


def _ice_server(name: str, index: int, entry: Any) -> IceServerEntry:
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
    return IceServerEntry(urls=tuple(url_list), username=username, credential=credential)


def _check_ice_url(name: str, index: int, url: str) -> None:
    scheme, _, rest = url.partition(":")
    if scheme not in ("stun", "turn", "turns") or not rest.strip("/"):
        raise ConfigError(name, f"entry {index} must be a stun:, turn: or turns: URL with a host")
    if any(char.isspace() for char in url):
        raise ConfigError(name, f"entry {index} contains whitespace")
