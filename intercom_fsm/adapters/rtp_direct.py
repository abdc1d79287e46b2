"""Putting a sender's RTP packets on the wire the way aiortc does, in one call.

aiortc sends each RTP packet through a chain of coroutines: the DTLS
transport encrypts it with its SRTP session and awaits the ICE transport,
which awaits the ICE connection, which awaits the nominated candidate pair's
protocol, which calls its datagram transport's ``sendto``. None of them
waits for anything, so a frame of already cut payloads can go out in one
plain call from whoever has it on the event loop (:mod:`.rtp_sender`),
without a task of its own per viewer: that is most of what a passed-through
picture costs the loop above the encryption and the system calls.

:func:`wire_of` finds the same SRTP session and the same pair aiortc would
use (a relayed pair's transport is aioice's TURN transport, which wraps the
datagram itself), and counts what it sends in the DTLS transport's statistics
as aiortc does. There is no API for this in aiortc or aioice, so it reads
their private state, checks every step, and answers None when any of it is
missing: the caller then keeps aiortc's own path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender

RTP_COMPONENT = 1
"""RTP and RTCP share one component (aiortc always multiplexes them)."""
BACKLOG_LIMIT = 64 * 1024
"""Bytes a viewer's way out may hold unsent before its frames are no longer
sent: a TCP connection to its TURN server, or a socket, slower than the
camera's stream would otherwise buffer without end, and the viewer's latency
grow with every frame."""
_DTLS_STATE = "_RTCDtlsTransport__"


class Wire:
    """One sender's way out: SRTP, then the nominated pair's transport."""

    def __init__(
        self,
        protect: Callable[[bytes], bytes],
        sendto: Callable[[bytes, Any], None],
        address: Any,
        dtls: Any,
        backlog: Callable[[], int] | None = None,
    ) -> None:
        self._protect = protect
        self._sendto = sendto
        self._address = address
        self._dtls = dtls
        self._backlog = backlog

    @property
    def backed_up(self) -> bool:
        """More than :data:`BACKLOG_LIMIT` bytes wait to leave."""
        return self._backlog is not None and self._backlog() > BACKLOG_LIMIT

    def send(self, packets: list[bytes]) -> None:
        """Encrypt and send ``packets`` in order, now."""
        protect, sendto, address = self._protect, self._sendto, self._address
        sent_bytes = 0
        for packet in packets:
            data = protect(packet)
            sendto(data, address)
            sent_bytes += len(data)
        dtls = self._dtls
        for name, more in (("tx_bytes", sent_bytes), ("tx_packets", len(packets))):
            attribute = _DTLS_STATE + name
            setattr(dtls, attribute, getattr(dtls, attribute) + more)


def wire_of(sender: RTCRtpSender) -> Wire | None:
    """The way ``sender``'s packets go out now; None while its DTLS transport
    is not connected, the ICE connection has no nominated pair, or this
    aiortc or aioice keeps that state elsewhere."""
    dtls: Any = getattr(sender, "transport", None)
    if dtls is None or getattr(dtls, "state", None) != "connected":
        return None
    srtp = getattr(dtls, "_tx_srtp", None)
    protect = getattr(srtp, "protect", None)
    if not callable(protect) or not all(
        isinstance(getattr(dtls, _DTLS_STATE + name, None), int)
        for name in ("tx_bytes", "tx_packets")
    ):
        return None
    connection = getattr(getattr(dtls, "transport", None), "_connection", None)
    nominated = getattr(connection, "_nominated", None)
    pair = nominated.get(RTP_COMPONENT) if isinstance(nominated, dict) else None
    transport = getattr(getattr(pair, "protocol", None), "transport", None)
    sendto = getattr(transport, "sendto", None)
    address = getattr(pair, "remote_addr", None)
    if not callable(sendto) or address is None:
        return None
    return Wire(protect, sendto, address, dtls, _backlog_of(transport))


def _backlog_of(transport: Any) -> Callable[[], int] | None:
    """What waits to leave through ``transport``: a relayed pair's is in the
    connection to the TURN server (aioice's TURN transport wraps it)."""
    inner = getattr(transport, "_TurnTransport__inner_protocol", None)
    to_server = getattr(inner, "transport", None)
    for candidate in (to_server, transport):
        size = getattr(candidate, "get_write_buffer_size", None)
        if callable(size):
            return size  # type: ignore[no-any-return]
    return None
