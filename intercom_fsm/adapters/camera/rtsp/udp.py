"""The two UDP ports a camera sends its RTP and RTCP to, when it is asked to
send over UDP (RFC 2326 section 12.39: ``client_port``; RFC 3550 section 11:
RTP on an even port, RTCP on the next one).

Only the camera's packets count: a datagram from any other address is
dropped (nobody else may put pictures in front of the viewers). An empty
receiver report goes to the camera's RTCP port every few seconds, as
clients do: some cameras stop sending to a client they do not hear from, and
it opens the way through a NAT in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Callable
from typing import Any

RECEIVER_REPORT_INTERVAL = 5.0
PORT_ATTEMPTS = 20
LOWEST_PORT = 10_000
HIGHEST_PORT = 65_000


class UdpMedia:
    def __init__(self, on_rtp: Callable[[bytes], None]) -> None:
        self._on_rtp = on_rtp
        self._transports: list[asyncio.DatagramTransport] = []
        self._camera: str | None = None
        self._reports: asyncio.Task[None] | None = None
        self.ports = (0, 0)
        self.strangers = 0
        """Datagrams dropped for coming from elsewhere than the camera."""

    async def open(self, address: str) -> tuple[int, int]:
        """An even port and the next one on ``address`` (the one the camera
        is reached from); raises ``OSError`` when none is free."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        loop = asyncio.get_running_loop()
        for _ in range(PORT_ATTEMPTS):
            port = 2 * secrets.choice(range(LOWEST_PORT // 2, HIGHEST_PORT // 2))
            opened: list[asyncio.DatagramTransport] = []
            try:
                for number, rtcp in ((port, False), (port + 1, True)):
                    transport, _ = await loop.create_datagram_endpoint(
                        self._protocol(rtcp), local_addr=(address, number), family=family
                    )
                    opened.append(transport)
            except OSError:
                for transport in opened:
                    transport.close()
                continue
            self._transports = opened
            self.ports = (port, port + 1)
            return self.ports
        raise OSError("no pair of UDP ports free for the camera's RTP")

    def accept(self, camera: str, rtcp_port: int) -> None:
        """Take RTP from ``camera`` (an address) from now on, and report to it."""
        self._camera = camera
        self._reports = asyncio.get_running_loop().create_task(self._report(camera, rtcp_port))

    def close(self) -> None:
        if self._reports is not None:
            self._reports.cancel()
        for transport in self._transports:
            transport.close()
        self._transports = []

    def _received(self, data: bytes, address: Any, rtcp: bool) -> None:
        if self._camera is None or address[0] != self._camera:
            self.strangers += 1
            return
        if not rtcp:  # the camera's own RTCP says nothing the daemon uses
            self._on_rtp(data)

    async def _report(self, camera: str, rtcp_port: int) -> None:
        """An empty RTCP receiver report (RFC 3550 6.4.2) from our RTCP port."""
        report = b"\x80\xc9\x00\x01" + secrets.randbits(32).to_bytes(4, "big")
        while len(self._transports) == 2:
            with contextlib.suppress(OSError):
                self._transports[1].sendto(report, (camera, rtcp_port))
            await asyncio.sleep(RECEIVER_REPORT_INTERVAL)

    def _protocol(self, rtcp: bool) -> Callable[[], asyncio.DatagramProtocol]:
        return lambda: _Datagrams(self, rtcp)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, media: UdpMedia, rtcp: bool) -> None:
        self._media = media
        self._rtcp = rtcp

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._media._received(data, addr, self._rtcp)
