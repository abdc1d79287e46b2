"""The values events carry: tokens, ICE candidates, session and peer names.

Parsed and typed at the edge like the events themselves (``intercom_fsm.events``
re-exports them).
"""

from __future__ import annotations

import enum

import attrs

SessionId = str
"""Names one viewer (protocol.md section 2). Messages without one belong to the
default viewer, :data:`DEFAULT_SESSION`."""

DEFAULT_SESSION: SessionId = ""

PeerId = int
"""A peer connection's serial number, given out by the machine. A new offer for
a session replaces its peer; the serial tells a late event of the old peer from
one of the new."""


@attrs.frozen
class TokenGrant:
    """A token response (RFC 6749 section 5.1) as the auth adapter parsed it."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_in: float
    scope: str | None = None


@attrs.frozen
class StoredTokens:
    """What the token store keeps (protocol.md section 1.4).

    ``expires_at`` is absolute (seconds since the epoch, the injected clock's
    scale) so it survives restarts. ``device_code`` names the device's stream
    for as long as the grant lives.
    """

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_at: float
    device_code: str = attrs.field(repr=False)


@attrs.frozen
class IceCandidate:
    """One ICE candidate in the protocol's JSON shape. An empty ``candidate``
    string is the end-of-candidates marker."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


class AuthOperation(enum.Enum):
    DEVICE_AUTHORIZATION = "device_authorization"
    POLL = "poll"
    REFRESH = "refresh"
