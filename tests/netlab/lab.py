"""A network lab for tests: namespaces, veth links, shaping, loss and outages.

Every test that needs a network other than loopback builds it here, as root,
with ``ip``, ``tc`` and ``nft``, and gets it removed when it ends, also when it
fails::

    with NetLab() as lab:
        device, viewer = lab.namespace("dev"), lab.namespace("view")
        link = lab.link(device, viewer)            # a veth pair, one /30
        link.shape(300, towards=viewer)            # tbf: 300 kbit/s that way
        link.set_loss(3.0, towards=viewer)         # nftables numgen random
        link.cut(); ...; link.restore()            # a total outage

What it holds to:

* **Addresses from 198.18.0.0/15 only** (RFC 2544's benchmarking range, never
  a real network's): each lab takes a free block of 64 addresses, one /30 per
  link, chosen from the process id so that parallel runs do not clash, and
  skipping blocks the root namespace already uses.
* **Names of its own**: namespaces ``il<pid>-<name>``, interfaces
  ``il<pid>x<n><side>``. At start a lab sweeps away what a run that no longer
  exists left behind under that prefix (its processes included); it never
  touches a name of a live run or anyone else's.
* **Removal**: deleting a namespace takes its interfaces, their veth peers and
  its nftables tables with it; :meth:`NetLab.close` kills what still runs in
  the lab's namespaces first, so nothing keeps one alive.
* **Bounded**: every command has a timeout; processes started through
  :meth:`Namespace.command` are wrapped in ``timeout`` with a hard limit.

The kernel has ``tbf``/``htb`` but no ``netem``: rate and queueing delay come
from ``tbf``, random loss from nftables' ``numgen random``, an outage from an
nftables rule that drops everything on both ends of a link.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from tests.netlab.host import (
    BLOCK_SIZE,
    LAB_NETWORK,
    PREFIX,
    LabError,
    free_block,
    kill,
    missing_requirements,
    namespace_names,
    root_interfaces,
    run,
    sweep_stale,
)

__all__ = ["LAB_NETWORK", "LabError", "Link", "Namespace", "NetLab", "missing_requirements", "run"]

CLEANUP_SECONDS = 5.0
PROCESS_LIMIT_SECONDS = 900
"""No process a lab starts outlives this, whatever happens to the test."""
TABLE = "netlab"

_link_serial = itertools.count()
_lab_serial = itertools.count()


@dataclass(eq=False)
class Namespace:
    """One network namespace of a lab."""

    lab: NetLab
    name: str
    short: str

    def ip(self, *args: str) -> str:
        return run(["ip", "-n", self.name, *args])

    def exec(self, *argv: str, check: bool = True, input_text: str | None = None) -> str:
        return run(["ip", "netns", "exec", self.name, *argv], check=check, input_text=input_text)

    def nft(self, script: str) -> str:
        """Apply an nftables script in this namespace (``nft -f -``)."""
        return self.exec("nft", "-f", "-", input_text=script)

    def command(self, argv: Sequence[str], limit: float = PROCESS_LIMIT_SECONDS) -> list[str]:
        """``argv`` run inside this namespace, killed after ``limit`` seconds at
        the latest (``timeout`` passes SIGTERM on, so stopping it stops ``argv``)."""
        return [
            "ip",
            "netns",
            "exec",
            self.name,
            "timeout",
            "--kill-after=5",
            f"{limit:g}",
            *argv,
        ]

    def counter(self, name: str) -> int:
        """Packets counted by the named nftables counter of this namespace's table."""
        text = self.exec("nft", "list", "counter", "inet", TABLE, name)
        match = re.search(r"packets (\d+)", text)
        return int(match.group(1)) if match else 0

    def block_udp(self) -> str:
        """Drop every UDP packet in and out (loopback aside): a network that
        lets only TCP through. Returns the name of the counter of dropped packets."""
        drop = "counter name udp_dropped drop"
        self.nft(
            f"""
            add counter inet {TABLE} udp_dropped
            add chain inet {TABLE} udp_in {{ type filter hook input priority -10; }}
            add chain inet {TABLE} udp_out {{ type filter hook output priority -10; }}
            add rule inet {TABLE} udp_in iifname != "lo" meta l4proto udp {drop}
            add rule inet {TABLE} udp_out oifname != "lo" meta l4proto udp {drop}
            """
        )
        return "udp_dropped"

    def allow_only(self, host: str, ports: Sequence[tuple[str, int]]) -> str:
        """Let through only traffic with ``host`` on the given (``tcp``/``udp``,
        port) services of it: a network from which the servers are reachable
        and nothing else, not even the addresses those servers relay from.
        Returns the name of the counter of dropped packets."""
        accepts_out = "\n".join(
            f"add rule inet {TABLE} only_out ip daddr {host} {proto} dport {port} accept"
            for proto, port in ports
        )
        accepts_in = "\n".join(
            f"add rule inet {TABLE} only_in ip saddr {host} {proto} sport {port} accept"
            for proto, port in ports
        )
        self.nft(
            f"""
            add counter inet {TABLE} others_dropped
            add chain inet {TABLE} only_in {{ type filter hook input priority -5; }}
            add chain inet {TABLE} only_out {{ type filter hook output priority -5; }}
            add rule inet {TABLE} only_in iifname "lo" accept
            add rule inet {TABLE} only_out oifname "lo" accept
            {accepts_in}
            {accepts_out}
            add rule inet {TABLE} only_in counter name others_dropped drop
            add rule inet {TABLE} only_out counter name others_dropped drop
            """
        )
        return "others_dropped"

    def route(self, destination: str, via: str) -> None:
        self.ip("route", "replace", destination, "via", via)

    def pids(self) -> list[int]:
        text = run(["ip", "netns", "pids", self.name], check=False)
        return [int(word) for word in text.split() if word.isdigit()]


@dataclass(eq=False)
class Link:
    """A veth pair between two namespaces (``None``: the root namespace)."""

    lab: NetLab
    a: Namespace | None
    b: Namespace | None
    a_interface: str
    b_interface: str
    a_address: str
    b_address: str
    _cut: bool = field(default=False, init=False)

    def address(self, side: Namespace | None) -> str:
        return self.a_address if side is self.a else self.b_address

    def interface(self, side: Namespace | None) -> str:
        return self.a_interface if side is self.a else self.b_interface

    def other(self, side: Namespace | None) -> Namespace | None:
        return self.b if side is self.a else self.a

    def shape(
        self,
        rate_kbit: float,
        *,
        towards: Namespace | None,
        queue_ms: float = 500.0,
        burst_bytes: int | None = None,
    ) -> None:
        """At most ``rate_kbit`` towards ``towards`` (tbf on the sending end),
        with a queue that holds up to ``queue_ms`` of traffic: what a slow
        uplink with a buffer does, delay first, then drops."""
        sender = self.other(towards)
        burst = burst_bytes or max(3000, int(rate_kbit * 1000 / 8 * 0.01))
        self._tc(
            sender,
            "qdisc",
            "replace",
            "dev",
            self.interface(sender),
            "root",
            "tbf",
            "rate",
            f"{rate_kbit:g}kbit",
            "burst",
            str(burst),
            "latency",
            f"{queue_ms:g}ms",
        )

    def unshape(self, *, towards: Namespace | None) -> None:
        sender = self.other(towards)
        self._tc(sender, "qdisc", "del", "dev", self.interface(sender), "root")

    def set_loss(self, percent: float, *, towards: Namespace | None) -> None:
        """Lose ``percent`` % of the packets sent towards ``towards``, at random
        (per ten thousand). They vanish where they arrive, after the sender's
        queue, so the sender sees no error, as with loss on a radio link."""
        interface = self.interface(towards)
        chain = f"loss_{interface}"
        per_10k = round(percent * 100)
        script = [
            f"add chain inet {TABLE} {chain} {{ type filter hook prerouting priority -200; }}",
            f"flush chain inet {TABLE} {chain}",
        ]
        if per_10k > 0:
            script.append(
                f'add rule inet {TABLE} {chain} iifname "{interface}" '
                f"numgen random mod 10000 < {per_10k} drop"
            )
        self.lab.nft(towards, "\n".join(script))

    def cut(self) -> None:
        """Everything on this link vanishes, both ways, until :meth:`restore`.
        The interfaces stay up and keep their addresses and senders see no
        error, as when a radio link fades: sockets hear silence."""
        if self._cut:
            return
        for side in (self.a, self.b):
            interface = self.interface(side)
            hook = "type filter hook prerouting priority -300;"
            self.lab.nft(
                side,
                f"""
                add chain inet {TABLE} cut_{interface} {{ {hook} }}
                add rule inet {TABLE} cut_{interface} iifname "{interface}" counter drop
                """,
            )
        self._cut = True

    def restore(self) -> None:
        if not self._cut:
            return
        for side in (self.a, self.b):
            self.lab.nft(side, f"delete chain inet {TABLE} cut_{self.interface(side)}")
        self._cut = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def _tc(self, side: Namespace | None, *args: str) -> None:
        if side is None:
            run(["tc", *args])
        else:
            side.exec("tc", *args)


class NetLab:
    """Namespaces and links of one test; a context manager that removes them."""

    def __init__(self) -> None:
        problem = missing_requirements()
        if problem is not None:
            raise LabError(problem)
        self.pid = os.getpid()
        self.namespaces: list[Namespace] = []
        self.links: list[Link] = []
        self._root_tables = False
        self._closed = False
        sweep_stale()
        self._block = free_block(next(_lab_serial))
        self._next_subnet = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A failing test's own error is the one to see; leftovers then are
        # swept by the next lab of this prefix once this process is gone.
        self.close(check=exc is None)

    def namespace(self, short: str) -> Namespace:
        if not re.fullmatch(r"[a-z0-9]{1,12}", short):
            raise ValueError(f"namespace names are 1-12 lowercase letters or digits: {short!r}")
        name = f"{PREFIX}{self.pid}-{short}"
        run(["ip", "netns", "add", name])
        namespace = Namespace(self, name, short)
        self.namespaces.append(namespace)
        namespace.ip("link", "set", "lo", "up")
        namespace.nft(f"add table inet {TABLE}")
        return namespace

    def link(self, a: Namespace | None, b: Namespace | None) -> Link:
        """A veth pair between ``a`` and ``b`` (``None`` is the root namespace),
        up, with the next /30 of the lab's block: ``a`` gets .1, ``b`` .2."""
        if self._next_subnet >= BLOCK_SIZE // 4:
            raise LabError("this lab has no addresses left")
        subnet = self._block.network_address + 4 * self._next_subnet
        self._next_subnet += 1
        serial = next(_link_serial)
        a_if, b_if = f"{PREFIX}{self.pid}x{serial}a", f"{PREFIX}{self.pid}x{serial}b"
        link = Link(self, a, b, a_if, b_if, str(subnet + 1), str(subnet + 2))
        run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if])
        self.links.append(link)
        for side, interface, address in ((a, a_if, link.a_address), (b, b_if, link.b_address)):
            if side is not None:
                run(["ip", "link", "set", interface, "netns", side.name])
            self._ip(side, "address", "add", f"{address}/30", "dev", interface)
            self._ip(side, "link", "set", interface, "up")
        return link

    def uplink(self, namespace: Namespace) -> Link:
        """A link from the root namespace (side ``a``) to ``namespace``: the way
        the namespace reaches servers that run on this host. Root does not
        forward (``ip_forward`` stays as it is), so namespaces with uplinks
        reach the root's addresses, not each other."""
        return self.link(None, namespace)

    def nft(self, side: Namespace | None, script: str) -> None:
        if side is not None:
            side.nft(script)
            return
        # The root namespace gets a table of this run's own, removed at close.
        table = self.root_table
        if not self._root_tables:
            run(["nft", "-f", "-"], input_text=f"add table inet {table}")
            self._root_tables = True
        run(["nft", "-f", "-"], input_text=script.replace(f"inet {TABLE} ", f"inet {table} "))

    @property
    def root_table(self) -> str:
        return f"{PREFIX}{self.pid}"

    def close(self, *, check: bool = True) -> None:
        """Remove everything; with ``check``, raise :class:`LabError` if some of
        it is still there after a few seconds (the kernel frees a deleted
        namespace's devices in the background)."""
        if self._closed:
            return
        self._closed = True
        for namespace in self.namespaces:
            kill(namespace.pids())
        for link in self.links:
            for side, interface in ((link.a, link.a_interface), (link.b, link.b_interface)):
                if side is None:
                    run(["ip", "link", "delete", interface], check=False)
        for namespace in self.namespaces:
            run(["ip", "netns", "delete", namespace.name], check=False)
        if self._root_tables:
            run(["nft", "delete", "table", "inet", self.root_table], check=False)
        deadline = time.monotonic() + CLEANUP_SECONDS
        while (leftovers := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if leftovers and check:
            raise LabError(f"the lab left {leftovers} behind")

    def leftovers(self) -> list[str]:
        """This run's namespaces and interfaces that still exist."""
        mine = f"{PREFIX}{self.pid}"
        names = [n for n in namespace_names() if n.startswith(f"{mine}-")]
        names += [i for i in root_interfaces() if i.startswith(f"{mine}x")]
        return names

    def _ip(self, side: Namespace | None, *args: str) -> None:
        if side is None:
            run(["ip", *args])
        else:
            side.ip(*args)
