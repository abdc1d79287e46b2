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
(:meth:`CaptureWorker.set_pictures_wanted`). An RTSP camera's H.264 is read
on the event loop instead (a :class:`LoopFedReader`, :mod:`.rtsp`): its
access units reach the passthrough viewers there, and the thread only owns
the camera (opens, decodes when pictures are wanted, notices a stall, backs
off); the loop wakes it (:meth:`CaptureWorker._interrupt_reader`) when the
demand or the pictures wanted change.

Events go to ``emit``, which is called on the capture thread and must hand
them over to the event loop itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import attrs

from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.camera.offline import OfflinePicture
from intercom_fsm.adapters.camera.pacing import Decimator, Pacer
from intercom_fsm.adapters.camera.passthrough import H264Passthrough
from intercom_fsm.adapters.camera.readers import (
    LoopFedReader,
    LoopSide,
    Reader,
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

logger = logging.getLogger(__name__)

THREAD_NAME = "intercom-camera-capture"
STABLE_AFTER = 30.0
"""A source that has worked this long is retried from the shortest delay again."""

OpenReader = Callable[[VideoSource, ReaderSettings], Reader]


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
        loop_side: LoopSide | None = None,
    ) -> None:
        """``loop_side``: the event loop, where a source that can be read
        there (an RTSP camera's H.264) is read."""
        self._source = source
        self._settings = settings
        self._hub = hub
        self._random = random
        self._open_source = open_source
        self._backoff = Backoff(
            BackoffPolicy(settings.reopen_base, settings.reopen_cap, STABLE_AFTER)
        )
        self._passthrough = passthrough
        self._loop_side = loop_side
        self._reader: Reader | None = None
        """The open reader, for :meth:`_interrupt_reader` (guarded by ``_requests``)."""
        self._reader_askable = True
        """False once the open reader said it cannot be asked for a keyframe
        (an RTSP camera): a viewer's loss then wakes no thread."""
        self._offline = OfflinePicture(settings.width, settings.height, settings.fps)
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
        self._interrupt_reader()

    def request_camera_keyframe(self) -> None:
        """Ask the source for a keyframe before the next picture, where it
        can be asked (a V4L2 H.264 camera)."""
        with self._requests:
            self._keyframe_asked = True
            askable = self._reader_askable
        if askable:
            self._interrupt_reader()

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
        self._interrupt_reader()

    def stop(self) -> None:
        self._demand.stop()
        self._interrupt_reader()

    def _interrupt_reader(self) -> None:
        """A reader fed on the loop sleeps through its pictures: wake it to
        see what changed."""
        with self._requests:
            reader = self._reader
        if isinstance(reader, LoopFedReader):
            reader.interrupt()

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
        reader: Reader | None = None
        try:
            while self._demand.wanted():
                if reader is None:
                    reader = self._open()
                    if reader is None:
                        if not self._offline_until_retry():
                            return
                        continue
                    self._set_reader(reader)
                reason = self._read_until_failure(reader)
                if reason is None:
                    return
                self._set_reader(None)
                reader.release()
                reader = None
                self._fail(reason)
                if not self._offline_until_retry():
                    return
        finally:
            self._set_reader(None)
            if reader is not None:
                reader.release()

    def _set_reader(self, reader: Reader | None) -> None:
        with self._requests:
            self._reader = reader
            self._reader_askable = True

    def _open(self) -> Reader | None:
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
                    rtsp_reader=settings.rtsp_reader,
                    loop_side=self._loop_side,
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

    def _came_online(self, reader: Reader) -> None:
        """The first picture since the source opened: only now is it back (a
        camera or server can open and then send nothing). Passthrough
        viewers wait for its next IDR (a reader fed on the loop has them wait
        there, before its first picture reaches them)."""
        self._backoff.succeeded(time.monotonic())
        settings = self._settings
        source_format = reader.source_format
        with self._counters.counting() as counters:
            counters.online = counters.capturing = True
        if self._passthrough is not None and not isinstance(reader, LoopFedReader):
            self._passthrough.restart_soon()
        description = (
            f"{self._source.description}, {settings.width}x{settings.height} "
            f"at {settings.fps:g} fps"
        )
        if source_format.codec != "raw":
            description += f" ({source_format.description})"
        self._availability.opened(description, self._source.description)

    def _read_until_failure(self, reader: Reader) -> str | None:
        """Read and publish until the source fails (the reason is returned) or
        the demand ends (None)."""
        if isinstance(reader, LoopFedReader):
            return self._follow_until_failure(reader)
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

    def _follow_until_failure(self, reader: LoopFedReader) -> str | None:
        """:meth:`_read_until_failure` for a reader fed on the loop: the
        passthrough viewers are served there; here, the pictures to decode."""
        decimator = Decimator(self._settings.frame_interval)
        description = self._source.description
        decoded = reader.pictures_decoded
        online = False
        while self._demand.wanted():
            reader.set_pictures_wanted(self._pictures_are_wanted())
            try:
                if self._take_keyframe_request() and not reader.request_keyframe():
                    with self._requests:
                        self._reader_askable = False
                news = reader.wait()
            except Exception as error:
                logger.debug("reading %s failed", description, exc_info=True)
                return f"reading {description} failed ({type(error).__name__})"
            if news.failure is not None:
                return f"no picture from {description} ({news.failure})"
            if news.pictures and not online:
                self._came_online(reader)
                online = True
            pixels = news.picture
            if pixels is not None and not decimator.accept(news.at):
                pixels = None
            decoded, before = reader.pictures_decoded, decoded
            with self._counters.counting() as counters:
                counters.frames_read += news.pictures
                counters.pictures_decoded += decoded - before
                if pixels is not None:
                    counters.frames_captured += 1
            if pixels is not None:
                self._hub.publish(pixels, news.at, live=True)
        return None

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
        pixels = self._offline.pixels(time.time())
        self._hub.publish(pixels, now, live=False)
        passthrough = self._passthrough
        if passthrough is not None and passthrough.wanted:
            unit = self._offline.access_unit(pixels)
            if unit is not None:
                passthrough.publish(unit, now)
        with self._counters.counting() as counters:
            counters.offline_frames += 1

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
