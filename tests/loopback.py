"""Tests only: keep WebRTC media on the test's own network.

aioice leaves 127.0.0.1 out of its host candidates (a real device must offer
its real interfaces); here, with no network but loopback, the tests' peers
gather 127.0.0.1 alone. The peer adapter drops a viewer's loopback candidates
(a real viewer is never on the device's loopback): the tests' viewers are, so
tests give their peer adapters :data:`LOOPBACK_PEERS`, and a daemon they start
calls :func:`accept_loopback_viewers_in_the_daemon` first. A process that a
test starts inside a network namespace of its lab (``tests/netlab``) is told
instead, in its environment, which of the namespace's addresses to use
(:data:`TEST_ICE_ADDRESSES`). Never used by the daemon itself.
"""

from __future__ import annotations

import os
from typing import Any

import aioice.ice
import attrs

from intercom_fsm.adapters.peer import PeerSettings

LOOPBACK_PEERS = PeerSettings(allow_loopback_candidates=True)

TEST_ICE_ADDRESSES = "INTERCOM_TEST_ICE_ADDRESSES"
"""Comma-separated IPv4 addresses for the host candidates of a process a test
runs in a namespace (its veth address); set only in that child's environment."""


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def ice_host_addresses() -> list[str]:
    """The addresses named in :data:`TEST_ICE_ADDRESSES`, or 127.0.0.1."""
    named = [a.strip() for a in os.environ.get(TEST_ICE_ADDRESSES, "").split(",") if a.strip()]
    return named or ["127.0.0.1"]


def restrict_ice_to_loopback() -> None:
    addresses = ice_host_addresses()

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return list(addresses) if use_ipv4 else []

    aioice.ice.get_host_addresses = host_addresses


def accept_loopback_viewers_in_the_daemon() -> None:
    """The daemon started in this process takes its viewers' loopback
    candidates (it builds its peer settings from the configuration, which has
    no such setting: a device never needs it)."""
    from intercom_fsm.daemon import app

    wired = app.peer_settings
    if getattr(wired, "accepts_loopback", False):
        return

    def peer_settings(config: Any) -> PeerSettings:
        return attrs.evolve(wired(config), allow_loopback_candidates=True)

    peer_settings.accepts_loopback = True  # type: ignore[attr-defined]
    app.peer_settings = peer_settings
