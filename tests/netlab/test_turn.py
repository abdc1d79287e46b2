"""TURN for real: the daemon behind networks where only a coturn relay gets
media through.

Each case runs the daemon as a process in a network namespace of its own lab,
against the sandbox backend and coturn (long-term credentials) in the root
namespace, and a viewer as a process in another namespace:

* both sides relay: device and viewer reach the servers' address and nothing
  else (nftables lets only the sandbox's and the TURN server's ports through),
  so no direct or half-relayed path exists;
* TURN over TCP: the device's network drops every UDP packet, and its
  ``ICE_SERVERS`` names ``turn:...?transport=tcp``;
* a relay-only device (``ICE_TRANSPORT_POLICY=relay``) on a network where
  the viewer could reach it directly.

Frames must arrive, the selected pair must be the one the network allows, and
the TURN credentials must appear in no line the daemon logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess
from tests.netlab.conftest import lab_unavailable
from tests.netlab.lab import NetLab
from tests.netlab.scene import Star, daemon_in, device_code, star, viewer_in
from tests.netlab.turn import TurnServer
from tests.netlab.viewer_process import ViewerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FRAMES = 20


@dataclass
class Servers:
    layout: Star
    sandbox: SandboxProcess
    turn: TurnServer
    workdir: Path


@pytest.fixture
def servers(netlab: NetLab, tmp_path: Path) -> Iterator[Servers]:
    layout = star(netlab, "dev", "view")
    try:
        turn = TurnServer(layout.server, tmp_path / "turn")
        sandbox = SandboxProcess(host=layout.server, auto_approve=True, device_interval=1)
    except FileNotFoundError as error:
        lab_unavailable(str(error))
    with turn, sandbox:
        yield Servers(layout, sandbox, turn, tmp_path)


@contextlib.contextmanager
def streaming(
    servers: Servers,
    *,
    device_ice: str,
    viewer_ice: str = "[]",
    addresses: tuple[str, str] | None = None,
    **device_settings: str,
) -> Iterator[tuple[DaemonProcess, ViewerProcess]]:
    """The daemon in ``dev`` and a viewer in ``view`` until the viewer has
    seen frames; ``addresses`` are their ICE host addresses (the device's, the
    viewer's, comma-separated), their uplinks' when not given."""
    layout, info = servers.layout, servers.sandbox.info
    device_address, viewer_address = addresses or (layout.address("dev"), layout.address("view"))
    daemon = daemon_in(
        layout.namespaces["dev"],
        info,
        servers.workdir,
        device_address,
        ICE_SERVERS=device_ice,
        **device_settings,
    )
    viewer: ViewerProcess | None = None
    try:
        code = device_code(daemon)
        viewer = viewer_in(
            layout.namespaces["view"],
            info,
            code,
            viewer_address,
            servers.workdir / "viewer.log",
            ice_servers=viewer_ice,
        )
        viewer.wait_for_frames(FRAMES, timeout=40)
        yield daemon, viewer
    finally:
        if viewer is not None:
            viewer.stop()
        daemon.stop()


def assert_no_credentials_logged(daemon: DaemonProcess, turn: TurnServer) -> None:
    text = daemon.text()
    assert len(text) > 1000, "the daemon's log should hold the whole run"
    for secret in turn.secrets:
        assert secret not in text


def sandbox_port(servers: Servers) -> int:
    return int(servers.sandbox.info.http_base_url.rsplit(":", 1)[1])


def test_both_sides_relay_when_they_reach_only_the_servers(servers: Servers) -> None:
    layout, turn = servers.layout, servers.turn
    services = [("tcp", sandbox_port(servers)), ("udp", turn.port), ("tcp", turn.port)]
    dropped = {
        name: layout.namespaces[name].allow_only(layout.server, services)
        for name in ("dev", "view")
    }
    ice = turn.ice_servers("udp")
    with streaming(servers, device_ice=ice, viewer_ice=ice) as (daemon, viewer):
        pair = viewer.of("pair")[0]
        assert (pair["local"], pair["remote"]) == ("relay", "relay")
        # The other paths were tried and blocked, not merely absent.
        blocked = sum(layout.namespaces[n].counter(c) for n, c in dropped.items())
        assert blocked > 0
        daemon.wait_for_state("Streaming")
    assert_no_credentials_logged(daemon, turn)


def test_turn_over_tcp_carries_the_stream_where_udp_is_blocked(servers: Servers) -> None:
    layout, turn = servers.layout, servers.turn
    device = layout.namespaces["dev"]
    # A network that would route anything, and lets no UDP out.
    device.route("default", layout.uplink("dev").address(None))
    udp_dropped = device.block_udp()
    with streaming(servers, device_ice=turn.ice_servers("tcp")) as (daemon, viewer):
        pair = viewer.of("pair")[0]
        assert pair["remote"] == "relay"  # the device's candidate: its TCP allocation
        assert device.counter(udp_dropped) > 0
        assert "tcp or tls connected" in turn.log_text()
        daemon.wait_for_state("Streaming")
    assert_no_credentials_logged(daemon, turn)


def test_a_relay_only_device_relays_where_a_direct_path_exists(servers: Servers) -> None:
    layout, turn = servers.layout, servers.turn
    device, viewer_side = layout.namespaces["dev"], layout.namespaces["view"]
    direct = layout.lab.link(device, viewer_side)
    # The viewer's host candidates: the direct link, and its uplink, which the relay reaches.
    viewer_addresses = f"{direct.address(viewer_side)},{layout.address('view')}"
    addresses = (direct.address(device), viewer_addresses)
    ice = turn.ice_servers("udp")
    with streaming(servers, device_ice=ice, addresses=addresses) as (daemon, viewer):
        assert viewer.of("pair")[0]["remote"] == "host"  # the direct path, by default
    with streaming(servers, device_ice=ice, addresses=addresses, ICE_TRANSPORT_POLICY="relay") as (
        daemon,
        viewer,
    ):
        assert viewer.of("pair")[0]["remote"] == "relay"  # the device offered nothing else
        daemon.wait_for_state("Streaming")
    assert_no_credentials_logged(daemon, turn)
