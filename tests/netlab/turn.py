"""A real TURN server for tests: Debian's coturn, long-term credentials.

    with TurnServer("127.0.0.1", workdir) as turn:
        turn.ice_servers(transport="tcp")   # the JSON for ICE_SERVERS

It listens on one address (loopback, or a lab address; inside a namespace if
given), relays from the same address on a port range picked from the process
id, and knows one user with a random name and password that the tests then
look for in every log. It starts without any configuration file or database
of the machine's, is ready once it answers a STUN binding request, runs under
``timeout`` so that it never outlives its limit, and :meth:`TurnServer.stop`
ends it (SIGTERM, then SIGKILL).

coturn refuses loopback peers unless told otherwise: on 127.0.0.1 it runs with
``--allow-loopback-peers``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from aioice import stun

from tests.netlab.lab import Namespace

TURNSERVER = "turnserver"
READY_TIMEOUT = 10.0
LIFETIME_SECONDS = 600
REALM = "intercom.test"


class TurnServer:
    def __init__(
        self,
        address: str,
        workdir: Path,
        *,
        namespace: Namespace | None = None,
        lifetime: float = LIFETIME_SECONDS,
    ) -> None:
        self.address = address
        self.port = _free_port(address) if namespace is None else 3478
        self.username = f"door-{secrets.token_hex(6)}"
        self.password = secrets.token_urlsafe(18)
        self.realm = REALM
        self._workdir = workdir
        self._namespace = namespace
        self._lifetime = lifetime
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "turnserver.log"
        low = 49_152 + (os.getpid() % 150) * 100
        self.relay_ports = (low, low + 99)

    @property
    def secrets(self) -> tuple[str, str]:
        """What must never appear in a client's log."""
        return self.username, self.password

    def url(self, transport: str = "udp") -> str:
        return f"turn:{self.address}:{self.port}?transport={transport}"

    def ice_servers(self, *transports: str) -> str:
        """``ICE_SERVERS`` for this server (JSON), one URL per transport."""
        return json.dumps(
            [
                {
                    "urls": [self.url(t) for t in (transports or ("udp",))],
                    "username": self.username,
                    "credential": self.password,
                }
            ]
        )

    def start(self) -> Self:
        if shutil.which(TURNSERVER) is None:
            raise FileNotFoundError("turnserver is missing (Debian package 'coturn')")
        self._workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            TURNSERVER,
            "-n",  # no configuration file: only what is below
            "--listening-ip",
            self.address,
            "--relay-ip",
            self.address,
            "--listening-port",
            str(self.port),
            "--min-port",
            str(self.relay_ports[0]),
            "--max-port",
            str(self.relay_ports[1]),
            "--lt-cred-mech",
            "--user",
            f"{self.username}:{self.password}",
            "--realm",
            self.realm,
            "--userdb",
            str(self._workdir / "turndb"),
            "--pidfile",
            str(self._workdir / "turnserver.pid"),
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-multicast-peers",
            "--fingerprint",
            "--log-file",
            "stdout",
            "--simple-log",
            "--verbose",
        ]
        if self.address.startswith("127."):
            argv.append("--allow-loopback-peers")
        bounded = ["timeout", "--kill-after=5", f"{self._lifetime:g}", *argv]
        command = self._namespace.command(argv, self._lifetime) if self._namespace else bounded
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def relayed_bytes(self) -> int:
        """Bytes the server relayed for its clients so far (its usage lines)."""
        return sum(
            int(sent) + int(received)
            for received, sent in re.findall(r"rb=(\d+), sp=\d+, sb=(\d+)", self.log_text())
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"turnserver exited:\n{self.log_text()[-3000:]}")
            if self._namespace is None and _answers_binding(self.address, self.port):
                return
            if self._namespace is not None and "Total General servers" in self.log_text():
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"turnserver not ready in {READY_TIMEOUT:g} s:\n{self.log_text()[-3000:]}"
        )


def _free_port(address: str) -> int:
    """A port free for both UDP and TCP on ``address``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {address}")


def _answers_binding(address: str, port: int) -> bool:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.sendto(bytes(request), (address, port))
            data = probe.recv(2048)
        except OSError:
            return False
    try:
        answer = stun.parse_message(data)
    except ValueError:
        return False
    return answer.transaction_id == request.transaction_id
