"""Which remote ICE candidates a viewer may hand the device.

A viewer's candidates arrive through the backend, from anyone who can open the
monitor page, and aioice acts on each: it pairs it with every local candidate
(the cost grows with the product), sends STUN checks to whatever address it
names, and starts an mDNS query for each ``.local`` name. So, per peer:

* at most ``max_candidates`` are taken (those in the offer's SDP and those
  trickled later together); the rest are dropped;
* an address that can never be a viewer is dropped: loopback (unless the
  tests allow it: they run on 127.0.0.1), multicast, unspecified (``0.0.0.0``,
  ``::``) and the limited broadcast address; so is a name that is neither an
  IP address nor an mDNS ``.local`` name (the device would look it up);
* at most ``max_mdns`` ``.local`` names are resolved.

:class:`RemoteCandidates` keeps the counts of one peer; :func:`filter_offer`
applies it to the ``a=candidate`` lines of an offer.
"""

from __future__ import annotations

import ipaddress

import attrs

LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@attrs.frozen
class CandidatePolicy:
    max_candidates: int = 50
    max_mdns: int = 4
    allow_loopback: bool = False
    """Tests only: their peers run on 127.0.0.1."""

    def address_problem(self, host: str) -> str | None:
        """Why a candidate naming ``host`` is refused whatever the counts, or None."""
        if host.lower().endswith(".local"):
            return None
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return "names a host that is not an IP address"
        if address.is_loopback and not self.allow_loopback:
            return "is a loopback address"
        if address.is_multicast:
            return "is a multicast address"
        if address.is_unspecified:
            return "is the unspecified address"
        if address == LIMITED_BROADCAST:
            return "is the broadcast address"
        return None


@attrs.define
class RemoteCandidates:
    """The remote candidates one peer has taken so far."""

    policy: CandidatePolicy
    taken: int = 0
    mdns: int = 0

    def refusal(self, host: str) -> str | None:
        """None, and the candidate counts as taken; or why it is dropped."""
        problem = self.policy.address_problem(host)
        if problem is not None:
            return problem
        if self.taken >= self.policy.max_candidates:
            return f"is beyond the {self.policy.max_candidates} candidates a viewer may give"
        is_mdns = host.lower().endswith(".local")
        if is_mdns and self.mdns >= self.policy.max_mdns:
            return f"is beyond the {self.policy.max_mdns} .local names resolved for a viewer"
        self.taken += 1
        self.mdns += is_mdns
        return None


def candidate_host(candidate: str) -> str | None:
    """The connection address of an ICE candidate attribute (RFC 8839 section
    5.1: ``foundation component transport priority address port typ ...``),
    with or without the ``candidate:`` / ``a=candidate:`` prefix."""
    text = candidate.strip().removeprefix("a=").removeprefix("candidate:")
    fields = text.split()
    return fields[4] if len(fields) >= 6 else None


def filter_offer(sdp: str, candidates: RemoteCandidates) -> tuple[str, list[str]]:
    """The offer without the ``a=candidate`` lines the policy drops, and why
    each was dropped. A line that does not parse is left to aiortc."""
    kept: list[str] = []
    dropped: list[str] = []
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            host = candidate_host(line)
            refusal = candidates.refusal(host) if host is not None else None
            if refusal is not None:
                dropped.append(refusal)
                continue
        kept.append(line)
    return "".join(kept), dropped
