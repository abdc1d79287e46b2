"""Who is connected right now, and the log of every frame relayed, for one sandbox process.

Channels' in-memory layer lives in one process, and so does this registry: it
maps each device code to the channel of its device socket and of its viewers'
sockets, hands out viewer session ids, and keeps a bounded log of relayed
frames that the control API returns for assertions.

It is read and written only on the server's event loop (consumers and async
views), never from the thread that runs Django's sync views.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["viewer_to_device", "device_to_viewer", "control_to_device"]
LOG_LENGTH = 2000


@dataclass(frozen=True)
class RelayedFrame:
    """One frame that reached the relay, and where it went.

    ``delivered`` is False when nobody could take it (the device or the
    viewer was gone, or the frame was not a JSON object and could not be routed).
    """

    seq: int
    at: float
    device_code: str
    direction: Direction
    session: str | None
    text: str | None
    binary_base64: str | None
    delivered: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class LiveRegistry:
    """Device and viewer sockets by device code, and the relay log."""

    def __init__(self) -> None:
        self._devices: dict[str, str] = {}
        self._viewers: dict[str, dict[str, str]] = {}
        self._log: deque[RelayedFrame] = deque(maxlen=LOG_LENGTH)
        self._sequence = itertools.count(1)

    # Devices: the newest socket of a device code is the one that counts.
    def attach_device(self, device_code: str, channel: str) -> str | None:
        """Make ``channel`` the device's socket; returns the socket it replaces, if any."""
        previous = self._devices.get(device_code)
        self._devices[device_code] = channel
        return previous

    def detach_device(self, device_code: str, channel: str) -> bool:
        """Forget the device's socket; False when a newer socket had already replaced it."""
        if self._devices.get(device_code) != channel:
            return False
        del self._devices[device_code]
        return True

    def device_channel(self, device_code: str) -> str | None:
        return self._devices.get(device_code)

    def connected_devices(self) -> set[str]:
        return set(self._devices)

    # Viewers: one session id per viewer socket.
    def add_viewer(self, device_code: str, channel: str) -> str:
        session = f"v-{secrets.token_hex(6)}"
        self._viewers.setdefault(device_code, {})[session] = channel
        return session

    def remove_viewer(self, device_code: str, session: str) -> None:
        sessions = self._viewers.get(device_code, {})
        sessions.pop(session, None)
        if not sessions:
            self._viewers.pop(device_code, None)

    def viewer_channel(self, device_code: str, session: str) -> str | None:
        return self._viewers.get(device_code, {}).get(session)

    def viewer_channels(self, device_code: str) -> list[str]:
        return list(self._viewers.get(device_code, {}).values())

    def viewer_counts(self) -> dict[str, int]:
        return {code: len(sessions) for code, sessions in self._viewers.items()}

    # The relay log.
    def record(
        self,
        device_code: str,
        direction: Direction,
        *,
        session: str | None,
        text: str | None = None,
        binary: bytes | None = None,
        delivered: bool,
    ) -> None:
        self._log.append(
            RelayedFrame(
                seq=next(self._sequence),
                at=time.time(),
                device_code=device_code,
                direction=direction,
                session=session,
                text=text,
                binary_base64=None if binary is None else base64.b64encode(binary).decode(),
                delivered=delivered,
            )
        )

    def frames(self, device_code: str | None = None, after: int = 0) -> list[RelayedFrame]:
        return [
            frame
            for frame in self._log
            if frame.seq > after and (device_code is None or frame.device_code == device_code)
        ]

    def clear_frames(self) -> None:
        self._log.clear()


LIVE = LiveRegistry()
