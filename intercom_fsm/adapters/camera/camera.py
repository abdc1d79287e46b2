"""The camera adapter: one capture shared by every viewer.

The runtime carries out the machine's ``OpenCamera`` with :meth:`Camera.open`
and ``CloseCamera`` with :meth:`Camera.close`, and gives each viewer's peer
connection its own :meth:`Camera.track_for_viewer`. The source is held open
while the camera is open and has viewers; on open it starts at once, so the
first viewer does not wait for the device. When the last viewer's track stops,
the device is released and the capture thread sleeps until a viewer comes
back (it then reopens the source without reporting anything).

Each viewer's track is told the codec its connection negotiated: VP8
viewers share one VP8 encoder (:mod:`.encoding`), H.264 viewers that accept
an H.264 camera's profile get its own packets (:mod:`.passthrough`), other
H.264 viewers share one H.264 encoder, hardware where the board has one
(:mod:`.h264_encoding`). An H.264 source is decoded only while some viewer
needs pictures.

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
from intercom_fsm.adapters.camera.h264_encoders import (
    EncoderChoice,
    OpenH264Encoder,
    choose_h264_encoder,
    open_h264_encoder,
)
from intercom_fsm.adapters.camera.h264_encoding import H264_MIME, SharedH264Encoder
from intercom_fsm.adapters.camera.hub import FrameHub, SharedEncoder, ViewerTrack
from intercom_fsm.adapters.camera.passthrough import H264Passthrough
from intercom_fsm.adapters.camera.readers import LoopSide, SourceFormat, open_reader
from intercom_fsm.adapters.camera.settings import CameraSettings, CameraStats, MediaPath
from intercom_fsm.adapters.camera.sources import TestPattern, parse_video_source
from intercom_fsm.events import Event

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 3.0
"""How long :meth:`Camera.close` waits for the capture thread. A network read
can block it for its 2 s timeout; past this the thread (a daemon) is left to
finish alone so that shutdown stays within its 5 s."""
FORMAT_WAIT = 3.0
"""How long an answer may wait for a source that is still opening to say
whether it delivers H.264 (an RTSP camera takes about a second, a V4L2
camera's H.264 half a second)."""


class Camera:
    def __init__(
        self,
        settings: CameraSettings,
        on_event: Callable[[Event], None],
        *,
        random: Callable[[], float] = random_module.random,
        open_source: OpenReader = open_reader,
        h264_encoder: EncoderChoice | None = None,
        open_h264: OpenH264Encoder = open_h264_encoder,
    ) -> None:
        """``random`` draws the backoff jitter in [0, 1); ``open_source`` opens
        a reader (tests swap in a faulty one); ``h264_encoder`` overrides the
        machine's encoder choice and ``open_h264`` opens it (tests make one
        fail). Raises ``ValueError`` for a bad ``settings.source``."""
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
        self._shared_h264: SharedH264Encoder | None = None
        self._h264_choice = h264_encoder
        self._open_h264 = open_h264
        self._passthrough = H264Passthrough(self._hub, self._update_picture_demand)

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
        self._passthrough.bind(self._loop)
        if self._h264_choice is None:
            self._h264_choice = choose_h264_encoder(self._settings.h264_encoder)
            logger.info("H.264 encoder: %s", self._h264_choice.description)
        worker = CaptureWorker(
            self._source,
            self._settings,
            self._hub,
            lambda event: self._emit_from_thread(worker, event),
            self._random,
            self._counters,
            self._open_source,
            self._passthrough if self._settings.h264_passthrough else None,
            self._loop_side(),
        )
        self._worker = worker
        self._passthrough.ask_camera_with(worker.request_camera_keyframe)
        self._update_picture_demand()
        worker.set_demand(True)
        worker.start()

    def _loop_side(self) -> LoopSide:
        assert self._loop is not None
        if not self._settings.h264_passthrough:
            return LoopSide(self._loop)
        return LoopSide(self._loop, self._passthrough.deliver, self._passthrough.restart)

    async def close(self) -> None:
        """Stop capturing, release the source and end every viewer's track."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        self._passthrough.ask_camera_with(None)
        worker.stop()
        for track in list(self._viewers):
            track.stop()
        self._passthrough.close()
        if self._shared_vp8 is not None:
            await self._shared_vp8.close()
        if self._shared_h264 is not None:
            await self._shared_h264.close()
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
            self._update_picture_demand()
            self._worker.set_demand(True)
        return track

    @property
    def source_format(self) -> SourceFormat | None:
        """What the source delivers, once it has opened (kept while it is down)."""
        return self._counters.snapshot().source_format

    @property
    def passthrough_profile(self) -> str | None:
        """The ``profile-level-id`` of the source's H.264 when viewers can get
        it as it is, else None."""
        found = self.source_format
        if not self._settings.h264_passthrough or found is None or found.h264 is None:
            return None
        return found.h264.profile_level_id

    @property
    def h264_encoder(self) -> EncoderChoice | None:
        """The shared H.264 encoder in use (after a fallback: the software
        one), once the camera has opened."""
        if self._shared_h264 is not None:
            return self._shared_h264.choice
        return self._h264_choice

    @property
    def h264_encoder_is_hardware(self) -> bool:
        choice = self.h264_encoder
        return choice is not None and choice.hardware

    async def wait_for_source_format(self, within: float = FORMAT_WAIT) -> SourceFormat | None:
        """The source's format; while a source that may deliver H.264 is still
        opening for the first time, wait for it up to ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            found = self.source_format
            if found is not None or self._worker is None:
                return found
            if isinstance(self._source, TestPattern):
                return None
            counters = self._counters.snapshot()
            if counters.failures or time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)

    def _shared_encoder(self, mime_type: str, profile_level_id: str | None) -> SharedEncoder | None:
        settings = self._settings
        passthrough = self.passthrough_profile
        if (
            mime_type == H264_MIME
            and passthrough is not None
            and (profile_level_id or "").lower() == passthrough
        ):
            return self._passthrough
        if not settings.shared_encoder:
            return None
        bitrate = settings.bitrate or default_bitrate(settings.width, settings.height, settings.fps)
        if mime_type == VP8_MIME:
            if self._shared_vp8 is None:
                self._shared_vp8 = SharedVp8Encoder(
                    self._hub, settings.width, settings.height, settings.fps, bitrate
                )
            return self._shared_vp8
        if mime_type == H264_MIME:
            if self._shared_h264 is None:
                choice = self._h264_choice or choose_h264_encoder(settings.h264_encoder)
                self._shared_h264 = SharedH264Encoder(
                    self._hub,
                    settings.width,
                    settings.height,
                    settings.fps,
                    bitrate,
                    choice,
                    self._open_h264,
                )
            return self._shared_h264
        return None

    def _update_picture_demand(self) -> None:
        if self._worker is not None:
            self._worker.set_pictures_wanted(len(self._viewers) > self._passthrough.viewers)

    @property
    def stats(self) -> CameraStats:
        counters = self._counters.snapshot()
        shared = self._shared_vp8
        shared_h264 = self._shared_h264
        encoder = self.h264_encoder
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
            source_codec=counters.source_format.description if counters.source_format else None,
            pictures_decoded=counters.pictures_decoded,
            passthrough_viewers=self._passthrough.viewers,
            passthrough_packets=self._passthrough.packets_published,
            passthrough_frames_not_sent=self._passthrough.frames_not_sent,
            h264_encoder=encoder.codec if encoder else None,
            h264_encoder_hardware=encoder.hardware if encoder else False,
            h264_encoder_fallbacks=shared_h264.fallbacks if shared_h264 else 0,
            shared_h264_pictures_encoded=shared_h264.pictures_encoded if shared_h264 else 0,
        )

    def media_path(self) -> MediaPath:
        stats = self.stats
        encoder = self.h264_encoder
        return MediaPath(
            source=stats.source_codec,
            passthrough_viewers=stats.passthrough_viewers,
            h264_encoder=encoder.description if encoder else None,
            h264_encoder_hardware=stats.h264_encoder_hardware,
            h264_encoder_fallbacks=stats.h264_encoder_fallbacks,
        )

    def _viewer_left(self, track: ViewerTrack) -> None:
        self._viewers.discard(track)
        self._update_picture_demand()
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
