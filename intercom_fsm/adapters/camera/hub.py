"""Sharing the latest picture between the capture thread and every viewer.

The capture thread :meth:`FrameHub.publish`-es each picture into a single
slot: a newer picture replaces an older one, so a viewer slower than the camera
always gets the newest picture and never a backlog. Publishing wakes the
viewers' tracks on the event loop (one ``call_soon_threadsafe`` per batch of
pictures, never per viewer). A :class:`ViewerTrack` is what aiortc sends to
one viewer; its ``recv()`` only waits for the slot to change, it never touches
the source.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.camera.frames import I420, VIDEO_CLOCK_RATE, Picture, video_frame
from intercom_fsm.adapters.rtp_payloads import Payloads


class FrameHub:
    """The latest picture, and the wake-up of everyone waiting for a newer one.

    ``publish`` runs on the capture thread; everything else on the event loop.
    """

    def __init__(self, fps: float) -> None:
        self._lock = threading.Lock()
        self._sequence = 0
        self._latest: Picture | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._news: asyncio.Event | None = None
        self._origin = time.monotonic()
        self.stale_after = 2.0 / fps
        """A new viewer does not start with a picture older than this; it waits
        for the next one instead (after a standby the slot holds an old one)."""
        self.frames_delivered = 0
        self.frames_dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop

    # --- capture thread ---------------------------------------------------------

    def publish(self, pixels: I420, captured_at: float, live: bool) -> None:
        with self._lock:
            self._sequence += 1
            self._latest = Picture(self._sequence, captured_at, pixels, live)
            loop = self._loop
            if loop is None or self._wake_pending:
                return
            self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._wake_waiting)
        except RuntimeError:  # the loop closed during shutdown: nobody is waiting
            with self._lock:
                self._wake_pending = False

    # --- event loop ---------------------------------------------------------------

    @property
    def latest(self) -> Picture | None:
        return self._latest

    def pts(self, captured_at: float) -> int:
        return round((captured_at - self._origin) * VIDEO_CLOCK_RATE)

    def age(self, captured_at: float) -> float:
        return time.monotonic() - captured_at

    def age_of_pts(self, pts: int) -> float:
        return self.age(self._origin + pts / VIDEO_CLOCK_RATE)

    async def wait_for_news(self) -> None:
        """Return after the next publish (or :meth:`wake`)."""
        if self._news is None:
            self._news = asyncio.Event()
        await self._news.wait()

    def wake(self) -> None:
        """Wake every waiting track, e.g. so that a stopped one notices."""
        news, self._news = self._news, None
        if news is not None:
            news.set()

    def _wake_waiting(self) -> None:
        with self._lock:
            self._wake_pending = False
        self.wake()


class EncodedPackets(Protocol):
    async def get(self) -> av.Packet[Any] | None: ...


@runtime_checkable
class ViewerFeedback(Protocol):
    """Packets of a shared encoder that adapts to the viewer: they take its
    keyframe requests and its receiver's reports (see ``rtcp_feedback``)."""

    def request_keyframe(self) -> None: ...

    def on_remb(self, bitrate: int) -> None: ...

    def on_receiver_report(
        self, highest_sequence: int, packets_lost: int, round_trip: float | None
    ) -> None: ...


DirectSend = Callable[[list[bytes], int], bool]
"""Sends one frame's RTP payloads at once; the int is the frame's timestamp on
the codec's clock; False: the frame was not sent, and the viewer needs a
keyframe next (:meth:`intercom_fsm.adapters.rtp_sender.LeanLoop.send_now`)."""


@runtime_checkable
class DirectSharing(Protocol):
    """A shared encoding that hands its frames out on the event loop and can
    give a viewer's straight to its sender as it does, instead of queueing them."""

    def send_directly(self, queue: EncodedPackets, send: DirectSend) -> asyncio.Future[None] | None:
        """From now on ``queue``'s viewer gets its frames through ``send``
        (what ``queue`` holds first); the future completes when they end.
        None: ``queue`` is not one of this encoding's."""
        ...


class SharedEncoder(Protocol):
    def subscribe(self, viewer: str = "") -> EncodedPackets:
        """A queue of the encoding's packets for ``viewer`` (a name for the log)."""
        ...

    def unsubscribe(self, queue: EncodedPackets) -> None: ...

    def request_keyframe(self, urgent: bool = False) -> None: ...

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """``packet``'s RTP payloads, when the encoding cut them for everyone."""
        ...


class ViewerTrack(MediaStreamTrack):
    """One viewer's video track, fed from the shared :class:`FrameHub`.

    Every frame is a new :class:`av.VideoFrame` over the shared pixels, in
    ``yuv420p`` on the 90 kHz clock, its pts taken from the capture time so
    the receiver plays pictures at the pace they were taken; pts only grow.
    ``stop()`` must be called on the event loop (aiortc does).

    Once the viewer's codec is known, :meth:`share_encoder` may switch the
    track to a shared encoder's packets (or the camera's own H.264), which
    aiortc sends without encoding; the camera's own H.264 may then go
    straight to the viewer's sender (:meth:`send_directly`).
    """

    kind = "video"

    def __init__(
        self,
        hub: FrameHub,
        on_stop: Callable[[ViewerTrack], None],
        shared_encoder: Callable[[str, str | None], SharedEncoder | None] = (
            lambda _mime, _profile: None
        ),
    ) -> None:
        super().__init__()
        self._hub = hub
        self._on_stop = on_stop
        self._find_shared_encoder = shared_encoder
        self._encoder: SharedEncoder | None = None
        self._packets: EncodedPackets | None = None
        self._feedback: ViewerFeedback | None = None
        self._last_sequence: int | None = None
        self._last_pts = -1

    def share_encoder(
        self, mime_type: str, profile_level_id: str | None = None, viewer: str = ""
    ) -> bool:
        """Take encoded packets from the shared encoder for ``mime_type`` (the
        codec the viewer's connection negotiated; for H.264 also the
        ``profile-level-id`` the answer gave), if there is one. ``viewer``
        names the viewer in the encoder's log lines."""
        if self._packets is not None or self.readyState != "live":
            return self._packets is not None
        encoder = self._find_shared_encoder(mime_type.lower(), profile_level_id)
        if encoder is None:
            return False
        self._encoder = encoder
        self._packets = encoder.subscribe(viewer)
        packets: object = self._packets
        self._feedback = packets if isinstance(packets, ViewerFeedback) else None
        return True

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """One of this track's packets cut into RTP payloads by its shared
        encoding, once for all its viewers (:mod:`..rtp_payloads`)."""
        return self._encoder.payloads_of(packet) if self._encoder is not None else None

    def send_directly(self, send: DirectSend) -> asyncio.Future[None] | None:
        """Have the shared encoding call ``send`` with each of this viewer's
        frames as it hands them out, instead of queueing them for
        :meth:`recv`. The future completes when the frames end (the track
        stopped); None when the encoding cannot: they keep coming through
        :meth:`recv`."""
        encoder: object = self._encoder
        packets = self._packets
        if not isinstance(encoder, DirectSharing) or packets is None:
            return None
        if self.readyState != "live":
            return None
        hub = self._hub

        def deliver(payloads: list[bytes], timestamp: int) -> bool:
            sent = send(payloads, timestamp)
            if sent:
                hub.frames_delivered += 1
            return sent

        return encoder.send_directly(packets, deliver)

    def request_keyframe(self) -> None:
        """The viewer lost pictures (it sent a PLI or FIR)."""
        if self._feedback is not None:
            self._feedback.request_keyframe()
        elif self._encoder is not None:
            self._encoder.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        """The viewer's receiver estimated what its path carries."""
        if self._feedback is not None:
            self._feedback.on_remb(bitrate)

    def on_receiver_report(
        self, highest_sequence: int, packets_lost: int, round_trip: float | None
    ) -> None:
        if self._feedback is not None:
            self._feedback.on_receiver_report(highest_sequence, packets_lost, round_trip)

    async def recv(self) -> av.VideoFrame | av.Packet[Any]:
        if self._packets is not None:
            packet = await self._packets.get()
            if packet is None or self.readyState != "live":
                raise MediaStreamError
            self._hub.frames_delivered += 1
            return packet
        picture = await self._next_picture()
        pts = max(self._hub.pts(picture.captured_at), self._last_pts + 1)
        self._last_pts = pts
        return video_frame(picture, pts)

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            if self._encoder is not None and self._packets is not None:
                self._encoder.unsubscribe(self._packets)
            self._hub.wake()
            self._on_stop(self)

    def frame_age(self, frame: av.VideoFrame | av.Packet[Any]) -> float:
        """Seconds since the picture in ``frame`` (one of this track's) was captured."""
        return self._hub.age_of_pts(frame.pts or 0)

    async def _next_picture(self) -> Picture:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            picture = self._hub.latest
            if picture is not None and self._is_news(picture):
                break
            await self._hub.wait_for_news()
        if self._last_sequence is not None:
            self._hub.frames_dropped += picture.sequence - self._last_sequence - 1
        self._hub.frames_delivered += 1
        self._last_sequence = picture.sequence
        return picture

    def _is_news(self, picture: Picture) -> bool:
        if self._last_sequence is None:
            return self._hub.age(picture.captured_at) <= self._hub.stale_after
        return picture.sequence > self._last_sequence
