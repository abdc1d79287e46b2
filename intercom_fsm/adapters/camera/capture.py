"""The capture thread: reads the source, keeps the latest picture, survives
failures.

One thread per camera, from :meth:`CaptureWorker.start` to
:meth:`CaptureWorker.stop`. It holds the source open only while there is
demand (the camera was opened and has viewers, or is warming up for the first
one); without demand it releases the device and sleeps.

When the source fails (it cannot be opened, a read fails, or a network stream
stalls past its read timeout) the thread reports :class:`CameraFailed` once,
publishes the offline picture at the configured rate so viewers stay
connected and see why, and reopens the source after an exponential backoff
with full jitter. The first picture after an open reports
:class:`CameraOpened` the first time and :class:`CameraRecovered` after a
failure (and resets the backoff): a camera or server that opens and then
sends nothing stays failed instead of coming and going.

A source that delivers H.264 hands each access unit to the passthrough
viewers (:mod:`.passthrough`) as it comes, every one of them (a decoder needs
them all), and decodes only while some viewer needs pictures
(:meth:`CaptureWorker.set_pictures_wanted`).

Events go to ``emit``, which is called on the capture thread and must hand
them over to the event loop itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import attrs

from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.camera.pacing import Decimator, Pacer
from intercom_fsm.adapters.camera.passthrough import H264Passthrough, OfflineEncoder
from intercom_fsm.adapters.camera.readers import (
    FrameReader,
    ReaderSettings,
    SourceFormat,
    SourceUnavailable,
    UndecodablePicture,
    open_reader,
)
from intercom_fsm.adapters.camera.settings import CameraSettings
from intercom_fsm.adapters.camera.sources import VideoSource
from intercom_fsm.adapters.device_thread import Availability, Demand, DeviceEvents
from intercom_fsm.adapters.thread_names import name_native_thread
from intercom_fsm.events import CameraFailed, CameraOpened, CameraRecovered, Event
from intercom_fsm.machine.backoff import Backoff, BackoffPolicy

if TYPE_CHECKING:
    from intercom_fsm.adapters.camera.bgr import I420Converter
    from intercom_fsm.adapters.camera.pictures import OfflinePainter

logger = logging.getLogger(__name__)

THREAD_NAME = "intercom-camera-capture"
STABLE_AFTER = 30.0
"""A source that has worked this long is retried from the shortest delay again."""

OpenReader = Callable[[VideoSource, ReaderSettings], FrameReader]


@attrs.define
class CaptureCounters:
    """The capture thread's share of :class:`CameraStats` (same meanings)."""

    frames_read: int = 0
    frames_captured: int = 0
    offline_frames: int = 0
    failures: int = 0
    reopen_attempts: int = 0
    last_reopen_delay: float | None = None
    source_opens: int = 0
    online: bool = False
    capturing: bool = False
    pictures_decoded: int = 0
    source_format: SourceFormat | None = None


class SharedCounters:
    """Counters written by the capture thread and read from the event loop.
    One instance outlives the workers of successive opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters = CaptureCounters()

    @contextlib.contextmanager
    def counting(self) -> Iterator[CaptureCounters]:
        with self._lock:
            yield self._counters

    def snapshot(self) -> CaptureCounters:
        with self._lock:
            return attrs.evolve(self._counters)


class CaptureWorker:
    def __init__(
        self,
        source: VideoSource,
        settings: CameraSettings,
        hub: FrameHub,
        emit: Callable[[Event], None],
        random: Callable[[], float],
        counters: SharedCounters,
        open_source: OpenReader = open_reader,
        passthrough: H264Passthrough | None = None,
    ) -> None:
        self._source = source
        self._settings = settings
        self._hub = hub
        self._random = random
        self._open_source = open_source
        self._backoff = Backoff(
            BackoffPolicy(settings.reopen_base, settings.reopen_cap, STABLE_AFTER)
        )
        self._passthrough = passthrough
        self._offline_painter: tuple[OfflinePainter, I420Converter] | None = None
        self._offline_pixels: tuple[int, I420] | None = None
        self._offline_h264: OfflineEncoder | None = None
        self._offline_pacer = Pacer(settings.frame_interval)
        self._demand = Demand()
        self._availability = Availability(
            "camera",
            DeviceEvents(CameraOpened, CameraFailed, CameraRecovered),
            emit,
            self._demand,
            logger,
            self._count_failure,
        )
        self._requests = threading.Lock()
        """Guards what the loop asks of the thread besides the demand."""
        self._pictures_wanted = True
        self._keyframe_asked = False
        self._counters = counters
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    # --- control, from the event loop ------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def set_demand(self, demanded: bool) -> None:
        self._demand.set(demanded)

    def request_camera_keyframe(self) -> None:
        """Ask the source for a keyframe before the next picture, where it
        can be asked (a V4L2 H.264 camera)."""
        with self._requests:
            self._keyframe_asked = True

    def _take_keyframe_request(self) -> bool:
        with self._requests:
            asked, self._keyframe_asked = self._keyframe_asked, False
        return asked

    def set_pictures_wanted(self, wanted: bool) -> None:
        """Whether some viewer needs decoded pictures. While none does, a
        live source is still read (so nothing queues up in the camera or the
        network) but nothing is decoded or drawn: an idle door spends no CPU
        on pictures nobody sees. A viewer's track is made when its offer is
        answered, so its first pictures are decoded during the handshake."""
        with self._requests:
            self._pictures_wanted = wanted

    def stop(self) -> None:
        self._demand.stop()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        name_native_thread()
        try:
            while self._demand.wait():
                self._serve()
                with self._counters.counting() as counters:
                    counters.capturing = False
        except Exception:
            logger.exception("the camera capture thread stopped on an unexpected error")
            self._fail("the capture thread stopped on an unexpected error")

    def _serve(self) -> None:
        """Keep the source open and read while there is demand."""
        reader: FrameReader | None = None
        try:
            while self._demand.wanted():
                if reader is None:
                    reader = self._open()
                    if reader is None:
                        if not self._offline_until_retry():
                            return
                        continue
                reason = self._read_until_failure(reader)
                if reason is None:
                    return
                reader.release()
                reader = None
                self._fail(reason)
                if not self._offline_until_retry():
                    return
        finally:
            if reader is not None:
                reader.release()

    def _open(self) -> FrameReader | None:
        settings = self._settings
        try:
            reader = self._open_source(
                self._source,
                ReaderSettings(
                    settings.width,
                    settings.height,
                    settings.fps,
                    settings.rtsp_transport,
                    settings.network_timeout,
                    prefer_h264=settings.h264_passthrough,
                ),
            )
        except SourceUnavailable as error:
            self._fail(str(error))
            return None
        except Exception as error:
            self._fail(f"cannot open {self._source.description} ({type(error).__name__})")
            return None
        with self._counters.counting() as counters:
            counters.source_opens += 1
            counters.source_format = reader.source_format
        return reader

    def _came_online(self, reader: FrameReader) -> None:
        """The first picture since the source opened: only now is it back (a
        camera or server can open and then send nothing)."""
        self._backoff.succeeded(time.monotonic())
        settings = self._settings
        source_format = reader.source_format
        with self._counters.counting() as counters:
            counters.online = counters.capturing = True
        if self._passthrough is not None:
            self._passthrough.restart_soon()
        description = (
            f"{self._source.description}, {settings.width}x{settings.height} "
            f"at {settings.fps:g} fps"
        )
        if source_format.codec != "raw":
            description += f" ({source_format.description})"
        self._availability.opened(description, self._source.description)

    def _read_until_failure(self, reader: FrameReader) -> str | None:
        """Read and publish until the source fails (the reason is returned) or
        the demand ends (None)."""
        pacer = Pacer(reader.read_interval) if reader.read_interval > 0 else None
        decimator = Decimator(self._settings.frame_interval)
        description = self._source.description
        passthrough = self._passthrough if reader.source_format.h264 is not None else None
        decoded = reader.pictures_decoded
        online = False
        while True:
            if pacer is not None:
                if not self._demand.sleep_until(pacer.due(time.monotonic())):
                    return None
                pacer.advance(time.monotonic())
            elif not self._demand.wanted():
                return None
            pictures_wanted = self._pictures_are_wanted()
            reader.set_pictures_wanted(pictures_wanted)
            try:
                if self._take_keyframe_request():
                    reader.request_keyframe()  # where it cannot, the next IDR comes anyway
                if not reader.grab():
                    why = reader.failure or "it ended, failed or stalled"
                    return f"no picture from {description} ({why})"
                if not online:
                    self._came_online(reader)
                    online = True
                now = time.monotonic()
                if passthrough is not None:
                    unit = reader.encoded()
                    if unit is not None:
                        passthrough.publish(unit, now)
                pixels = None
                if pictures_wanted and decimator.accept(now):
                    pixels = reader.retrieve()
                decoded, before = reader.pictures_decoded, decoded
                with self._counters.counting() as counters:
                    counters.frames_read += 1
                    counters.pictures_decoded += decoded - before
                    if pixels is not None:
                        counters.frames_captured += 1
                if pixels is not None:
                    self._hub.publish(pixels, now, live=True)
            except UndecodablePicture:
                return f"cannot decode a picture from {description}"
            except Exception as error:
                logger.debug("reading %s failed", description, exc_info=True)
                return f"reading {description} failed ({type(error).__name__})"

    def _offline_until_retry(self) -> bool:
        """Serve the offline picture through one backoff delay. False when the
        demand ended meanwhile."""
        delay = self._backoff.next_delay(time.monotonic(), self._random)
        with self._counters.counting() as counters:
            counters.reopen_attempts += 1
            counters.last_reopen_delay = delay
        deadline = time.monotonic() + delay
        while True:
            now = time.monotonic()
            due = self._offline_pacer.due(now)
            if now >= due:
                self._publish_offline(now)
                self._offline_pacer.advance(now)
                due = self._offline_pacer.due(now)
            if now >= deadline:
                return True
            if not self._demand.sleep_until(min(due, deadline)):
                return False

    def _publish_offline(self, now: float) -> None:
        pixels = self._offline_picture(time.time())
        self._hub.publish(pixels, now, live=False)
        passthrough = self._passthrough
        if passthrough is not None and passthrough.wanted:
            if self._offline_h264 is None:
                settings = self._settings
                self._offline_h264 = OfflineEncoder(settings.width, settings.height, settings.fps)
            unit = self._offline_h264.encode(pixels)
            if unit is not None:
                passthrough.publish(unit, now)
        with self._counters.counting() as counters:
            counters.offline_frames += 1

    def _offline_picture(self, wall_clock: float) -> I420:
        """The offline picture, drawn again once a second (its clock)."""
        key = int(wall_clock)
        if self._offline_pixels is not None and self._offline_pixels[0] == key:
            return self._offline_pixels[1]
        if self._offline_painter is None:
            # Drawn with OpenCV, which is loaded only once a source has failed.
            from intercom_fsm.adapters.camera.bgr import I420Converter
            from intercom_fsm.adapters.camera.pictures import OfflinePainter

            width, height = self._settings.width, self._settings.height
            self._offline_painter = (OfflinePainter(width, height), I420Converter(width, height))
        painter, converter = self._offline_painter
        pixels = converter.convert(painter.paint(wall_clock))
        self._offline_pixels = (key, pixels)
        return pixels

    def _fail(self, reason: str) -> None:
        with self._counters.counting() as counters:
            counters.online = counters.capturing = False
        self._availability.failed(reason, unavailable="offline")

    def _count_failure(self) -> None:
        with self._counters.counting() as counters:
            counters.failures += 1

    # --- waiting ------------------------------------------------------------------------

    def _pictures_are_wanted(self) -> bool:
        with self._requests:
            return self._pictures_wanted
