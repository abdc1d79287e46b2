"""Where tokens may travel: the transport policy shared by the configuration
and the adapters.

A bearer token, a refresh token or the client secret only crosses the network
encrypted (https/wss), except to a loopback host, or everywhere when the
operator sets ``ALLOW_INSECURE_TRANSPORT=1`` and so accepts the risk. The
configuration checks the base URLs with :func:`insecure_transport_problem` at
start-up; each adapter checks again before it sends anything, as defence in
depth.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


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
