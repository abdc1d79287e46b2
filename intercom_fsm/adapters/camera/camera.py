"""The camera adapter: one capture shared by every viewer.

The runtime carries out the machine's ``OpenCamera`` with :meth:`Camera.open`
and ``CloseCamera`` with :meth:`Camera.close`, and gives each viewer's peer
connection its own :meth:`Camera.track_for_viewer`. The source is held open
while the camera is open and has viewers; on open it starts at once, so the
first viewer does not wait for the device. When the last viewer's track stops,
the device is released and the capture thread sleeps until a viewer comes
back (it then reopens the source without reporting anything).

Events (:class:`CameraOpened`, :class:`CameraFailed`, :class:`CameraRecovered`)
reach ``on_event`` on the event loop that called :meth:`Camera.open`.
"""

from __future__ import annotations

import asyncio
import logging
import random as random_module
import time
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm.adapters.camera.capture import (
    THREAD_NAME,
    CaptureWorker,
    OpenReader,
    SharedCounters,
)
from intercom_fsm.adapters.camera.encoding import VP8_MIME, SharedVp8Encoder, default_bitrate
from intercom_fsm.adapters.camera.hub import FrameHub, ViewerTrack
from intercom_fsm.adapters.camera.readers import open_reader
from intercom_fsm.adapters.camera.settings import CameraSettings, CameraStats
from intercom_fsm.adapters.camera.sources import parse_video_source
from intercom_fsm.events import Event

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 3.0
"""How long :meth:`Camera.close` waits for the capture thread. A network read
can block it for its 2 s timeout; past this the thread (a daemon) is left to
finish alone so that shutdown stays within its 5 s."""


class Camera:
    def __init__(
        self,
        settings: CameraSettings,
        on_event: Callable[[Event], None],
        *,
        random: Callable[[], float] = random_module.random,
        open_source: OpenReader = open_reader,
    ) -> None:
        """``random`` draws the backoff jitter in [0, 1); ``open_source`` opens
        a reader (tests swap in a faulty one). Raises ``ValueError`` for a bad
        ``settings.source``."""
        self._settings = settings
        self._source = parse_video_source(settings.source)
        self._on_event = on_event
        self._random = random
        self._open_source = open_source
        self._hub = FrameHub(settings.fps)
        self._counters = SharedCounters()
        self._viewers: set[ViewerTrack] = set()
        self._worker: CaptureWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shared_vp8: SharedVp8Encoder | None = None

    @property
    def description(self) -> str:
        """The source, without credentials."""
        return self._source.description

    async def open(self) -> None:
        """Start capturing in the background; returns at once."""
        if self._worker is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._hub.bind(self._loop)
        worker = CaptureWorker(
            self._source,
            self._settings,
            self._hub,
            lambda event: self._emit_from_thread(worker, event),
            self._random,
            self._counters,
            self._open_source,
        )
        self._worker = worker
        worker.set_demand(True)
        worker.start()

    async def close(self) -> None:
        """Stop capturing, release the source and end every viewer's track."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.stop()
        for track in list(self._viewers):
            track.stop()
        if self._shared_vp8 is not None:
            await self._shared_vp8.close()
        await _join(worker)
        with self._counters.counting() as counters:
            counters.online = counters.capturing = False

    def track_for_viewer(self) -> MediaStreamTrack:
        """A new track for one viewer, fed from the shared capture. Stopping it
        (aiortc does when the viewer's sender ends) lets the capture go idle
        once no viewer is left."""
        track = ViewerTrack(self._hub, self._viewer_left, self._shared_encoder)
        self._viewers.add(track)
        if self._worker is not None:
            self._worker.set_demand(True)
        return track

    def _shared_encoder(self, mime_type: str) -> SharedVp8Encoder | None:
        settings = self._settings
        if not settings.shared_encoder or mime_type != VP8_MIME:
            return None
        if self._shared_vp8 is None:
            bitrate = settings.bitrate or default_bitrate(
                settings.width, settings.height, settings.fps
            )
            self._shared_vp8 = SharedVp8Encoder(
                self._hub, settings.width, settings.height, settings.fps, bitrate
            )
        return self._shared_vp8

    @property
    def stats(self) -> CameraStats:
        counters = self._counters.snapshot()
        shared = self._shared_vp8
        return CameraStats(
            frames_read=counters.frames_read,
            frames_captured=counters.frames_captured,
            offline_frames=counters.offline_frames,
            frames_delivered=self._hub.frames_delivered,
            frames_dropped=self._hub.frames_dropped,
            failures=counters.failures,
            reopen_attempts=counters.reopen_attempts,
            last_reopen_delay=counters.last_reopen_delay,
            source_opens=counters.source_opens,
            online=counters.online,
            capturing=counters.capturing,
            viewers=len(self._viewers),
            shared_pictures_encoded=shared.pictures_encoded if shared else 0,
            shared_keyframes=shared.keyframes if shared else 0,
        )

    def _viewer_left(self, track: ViewerTrack) -> None:
        self._viewers.discard(track)
        if not self._viewers and self._worker is not None:
            self._worker.set_demand(False)

    def _emit_from_thread(self, worker: CaptureWorker, event: Event) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._deliver, worker, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            logger.debug("camera event after the event loop closed: %r", event)

    def _deliver(self, worker: CaptureWorker, event: Event) -> None:
        # A closed camera's last words would reach a machine that closed it.
        if worker is self._worker:
            self._on_event(event)


async def _join(worker: CaptureWorker) -> None:
    """Wait for the thread without blocking the loop (and without borrowing an
    executor thread for it)."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    delay = 0.001
    while worker.is_alive():
        if time.monotonic() >= deadline:
            logger.warning("the %s thread did not stop within %gs", THREAD_NAME, JOIN_TIMEOUT)
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)
