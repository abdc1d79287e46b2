"""Tests only: keep WebRTC media on loopback.

aioice leaves 127.0.0.1 out of its host candidates (a real device must offer
its real interfaces); here, with no network but loopback, the tests' peers
gather 127.0.0.1 alone. Never used by the daemon itself.
"""

from __future__ import annotations

import aioice.ice


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def restrict_ice_to_loopback() -> None:
    aioice.ice.get_host_addresses = loopback_host_addresses
