"""Answering a camera's ``401 Unauthorized`` (RFC 2617, RFC 7616), sans I/O.

A camera names its schemes in ``WWW-Authenticate``; Digest is taken over
Basic when both are offered (Basic sends the password itself). Once a
challenge is answered, every later request carries the credentials (Digest
counts its requests when the camera asked for ``qop=auth``). A second
``401`` for the same challenge means the credentials are wrong, unless the
camera says its nonce went stale.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import attrs

_PARAMETER = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
_DIGESTS = {
    "md5": hashlib.md5,
    "md5-sess": hashlib.md5,
    "sha-256": hashlib.sha256,
    "sha-256-sess": hashlib.sha256,
}


@attrs.frozen
class Credentials:
    user: str
    password: str = attrs.field(repr=False)


@attrs.frozen
class Challenge:
    scheme: str
    """``basic`` or ``digest``."""
    parameters: dict[str, str] = attrs.field(hash=False)

    @property
    def realm(self) -> str:
        return self.parameters.get("realm", "")


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Each ``WWW-Authenticate`` value's challenge (one per header; the rare
    camera that lists two in one header gets its first)."""
    challenges: list[Challenge] = []
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        parameters: dict[str, str] = {}
        for match in _PARAMETER.finditer(rest):
            quoted, plain = match.group(2), match.group(3)
            text = quoted.replace('\\"', '"') if quoted is not None else plain or ""
            parameters[match.group(1).lower()] = text
        if scheme:
            challenges.append(Challenge(scheme.lower(), parameters))
    return challenges


class Authenticator:
    """The ``Authorization`` header for each request, once challenged."""

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._challenge: Challenge | None = None
        self._count = 0

    @property
    def scheme(self) -> str | None:
        return self._challenge.scheme if self._challenge is not None else None

    def challenged(self, values: list[str]) -> bool:
        """A ``401`` came with these ``WWW-Authenticate`` values: True when
        the request is worth sending again with (new) credentials."""
        if self._credentials is None:
            return False
        offered = [c for c in parse_challenges(values) if c.scheme in ("digest", "basic")]
        usable = [
            c
            for c in offered
            if c.scheme == "basic"
            or (
                "nonce" in c.parameters
                and c.parameters.get("algorithm", "MD5").lower() in _DIGESTS
                and _qop(c) is not False
            )
        ]
        chosen = next((c for c in usable if c.scheme == "digest"), None) or next(iter(usable), None)
        if chosen is None:
            return False
        previous = self._challenge
        self._challenge = chosen
        self._count = 0
        if previous is None:
            return True
        # Answered once already: only a stale nonce is worth another try.
        return chosen.scheme == "digest" and chosen.parameters.get("stale", "").lower() == "true"

    def header(self, method: str, uri: str) -> str | None:
        """``Authorization`` for a request, None before any challenge."""
        credentials, challenge = self._credentials, self._challenge
        if credentials is None or challenge is None:
            return None
        if challenge.scheme == "basic":
            token = base64.b64encode(f"{credentials.user}:{credentials.password}".encode())
            return f"Basic {token.decode()}"
        return self._digest(credentials, challenge, method, uri)

    def _digest(self, credentials: Credentials, challenge: Challenge, method: str, uri: str) -> str:
        parameters = challenge.parameters
        algorithm = parameters.get("algorithm", "MD5")
        digest = _DIGESTS[algorithm.lower()]

        def hashed(text: str) -> str:
            return digest(text.encode()).hexdigest()

        nonce = parameters["nonce"]
        ha1 = hashed(f"{credentials.user}:{challenge.realm}:{credentials.password}")
        cnonce = secrets.token_hex(8)
        per_session = algorithm.lower().endswith("-sess")
        if per_session:
            ha1 = hashed(f"{ha1}:{nonce}:{cnonce}")
        ha2 = hashed(f"{method}:{uri}")
        fields = [
            f'username="{_quoted(credentials.user)}"',
            f'realm="{_quoted(challenge.realm)}"',
            f'nonce="{_quoted(nonce)}"',
            f'uri="{_quoted(uri)}"',
        ]
        if _qop(challenge):
            self._count += 1
            count = f"{self._count:08x}"
            answer = hashed(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
        else:
            answer = hashed(f"{ha1}:{nonce}:{ha2}")
            if per_session:  # the server needs the cnonce its first hash took
                fields.append(f'cnonce="{cnonce}"')
        fields.append(f'response="{answer}"')
        if "algorithm" in parameters:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in parameters:
            fields.append(f'opaque="{_quoted(parameters["opaque"])}"')
        return "Digest " + ", ".join(fields)


def _qop(challenge: Challenge) -> bool | None:
    """Whether to answer with ``qop=auth``: None when the camera asked for no
    qop (RFC 2069 style), False when it asked only for one we cannot do."""
    asked = challenge.parameters.get("qop")
    if asked is None:
        return None
    options = {option.strip().lower() for option in asked.split(",")}
    return "auth" in options


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
