"""Putting the daemon and viewers into a lab: the layout the network tests and
``bench/network.py`` share.

A *star*: every namespace has an uplink to the root namespace, where the
servers run (the sandbox backend, coturn), bound to the root end of the first
uplink. Root does not forward, so a namespace reaches the servers and nothing
else: not another namespace, not the machine's own network. A test adds a
direct link between two namespaces where media may flow straight.

The daemon runs in a namespace as ``intercom-fsm run`` (the e2e tests'
launcher) with its ICE host candidates on the address the test names.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from intercom_fsm.sandbox.process import SandboxInfo
from tests.e2e.daemon_process import LAUNCH, DaemonProcess, daemon_environment
from tests.loopback import TEST_ICE_ADDRESSES
from tests.netlab.lab import Link, Namespace, NetLab
from tests.netlab.viewer_process import ViewerProcess


@dataclass
class Star:
    lab: NetLab
    server: str
    """The address the servers bind to; every namespace has a route to it."""
    uplinks: dict[str, Link] = field(default_factory=dict)
    namespaces: dict[str, Namespace] = field(default_factory=dict)

    def uplink(self, name: str) -> Link:
        return self.uplinks[name]

    def address(self, name: str) -> str:
        """The namespace's own end of its uplink."""
        return self.uplinks[name].address(self.namespaces[name])


def star(lab: NetLab, *names: str) -> Star:
    first: Link | None = None
    layout: Star | None = None
    for name in names:
        namespace = lab.namespace(name)
        link = lab.uplink(namespace)
        if first is None:
            first = link
            layout = Star(lab, link.address(None))
        else:
            namespace.route(f"{first.address(None)}/32", link.address(None))
        assert layout is not None
        layout.uplinks[name] = link
        layout.namespaces[name] = namespace
    assert layout is not None, "a star needs at least one namespace"
    return layout


def daemon_in(
    namespace: Namespace,
    info: SandboxInfo,
    workdir: Path,
    ice_address: str,
    **overrides: str,
) -> DaemonProcess:
    """``intercom-fsm run`` inside ``namespace``, plain HTTP to the lab's
    sandbox allowed, ICE host candidates on ``ice_address`` only."""
    environ = daemon_environment(
        info,
        workdir / "config" / "tokens.json",
        ALLOW_INSECURE_TRANSPORT="1",
        **{TEST_ICE_ADDRESSES: ice_address},
        **overrides,
    )
    command = namespace.command([sys.executable, "-c", LAUNCH.format(argv=["run"])])
    return DaemonProcess(environ, workdir / "daemon.log", command=command).start()


def device_code(daemon: DaemonProcess, timeout: float = 30.0) -> str:
    """The daemon's device code, once it is signed in and its socket is open."""
    daemon.wait_for_state("Negotiating", timeout=timeout)
    token_file = Path(daemon.environ["TOKEN_FILE_PATH"])
    code: str = json.loads(token_file.read_text())["device_code"]
    return code


def viewer_in(
    namespace: Namespace,
    info: SandboxInfo,
    code: str,
    ice_address: str,
    log_path: Path,
    *,
    ice_servers: str = "[]",
    relay_only: bool = False,
) -> ViewerProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEO_", "ICE_"))}
    environ.update({TEST_ICE_ADDRESSES: ice_address, "PYTHONUNBUFFERED": "1"})
    return ViewerProcess(
        namespace.command,
        info.state_dir / "sandbox.json",
        code,
        environ,
        ice_servers=ice_servers,
        relay_only=relay_only,
        log_path=log_path,
    )
