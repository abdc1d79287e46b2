"""The capture thread's side of an RTSP camera read on the event loop.

:class:`RtspReader` opens an :class:`~.session.RtspSession` on the loop and
waits for it. From then on each picture the session completes is handled
right there on the loop, where the viewers are sent from: its parameter sets
are put before every IDR (:class:`~intercom_fsm.adapters.camera.h264.AccessUnitFixer`)
and it goes to the passthrough viewers (``deliver``) with no thread between;
the pictures since the last IDR are kept. The capture thread hears of the
stream only when it must (:meth:`RtspReader.wait`): once pictures are wanted
it decodes every access unit, starting from the kept IDR; otherwise it sleeps
until the stream ends or stalls, or the capture worker wakes it
(:meth:`RtspReader.interrupt`), so a passed-through camera costs the capture
thread nothing per picture.

At the open the reader looks at the stream for half a second, as FFmpeg
probes one: for the parameter sets when the SDP did not declare them, and
for B slices (pictures out of order cannot be passed through).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import av

from intercom_fsm.adapters.camera.h264 import (
    NAL_PPS,
    NAL_SPS,
    AccessUnit,
    AccessUnitFixer,
    ParameterSets,
    StreamLayout,
)
from intercom_fsm.adapters.camera.h264_sps import B_SLICE, parse_sps, slice_type
from intercom_fsm.adapters.camera.inter_decoder import InterDecoder
from intercom_fsm.adapters.camera.readers import LoopSide, News, SourceFormat, SourceUnavailable
from intercom_fsm.adapters.camera.rtsp.depacketize import DepacketizedUnit
from intercom_fsm.adapters.camera.rtsp.describe import NotReadHere
from intercom_fsm.adapters.camera.rtsp.session import RtspFailure, RtspSession
from intercom_fsm.adapters.camera.sources import StreamUrl
from intercom_fsm.adapters.camera.yuv import FrameToI420

logger = logging.getLogger(__name__)

PROBE_SECONDS = 0.5
"""How long the open looks at the stream, as FFmpeg's ``analyzeduration`` of
the FFmpeg reader."""
PROBE_PICTURES = 8
"""The open looks no further once it has seen this many pictures and the
parameter sets."""
REPLAY_LIMIT_BYTES = 8 * 1024 * 1024
"""The pictures kept since the last IDR; a longer GOP is not replayed (the
decoding then starts at the next IDR)."""
OPEN_TIMEOUTS = 2
"""Connecting and setting the camera up (several requests, perhaps signed
twice) may take this many read timeouts."""
PENDING_LIMIT = 120
"""Pictures waiting for the capture thread's decoder; past this it has
fallen behind, and starts again at the next IDR."""

Deliver = Callable[[AccessUnit, float], None]


class RtspReader:
    """A camera read on the loop. Every method runs on the capture thread,
    but :meth:`interrupt` (any thread); the ``_on_*`` ones run on the loop."""

    read_interval = 0.0

    def __init__(
        self,
        source: StreamUrl,
        width: int,
        height: int,
        transport: str,
        timeout: float,
        side: LoopSide,
    ) -> None:
        """Raises :class:`NotReadHere` for a camera FFmpeg must read, and
        :class:`SourceUnavailable` for one that cannot be opened."""
        self._loop = side.loop
        self._timeout = timeout
        self._description = source.description
        self._condition = threading.Condition()
        self._arrived = 0
        self._reported = 0
        self._last_arrival = time.monotonic()
        self._ended: str | None = None
        self._interrupted = False
        self._decoding = False
        self._pending: collections.deque[AccessUnit] = collections.deque()
        self._since_idr: list[AccessUnit] = []
        self._since_idr_bytes = 0
        self._resync = False
        self._fresh = False
        """An access unit came for the decoder since the last wait."""
        self._probing: list[DepacketizedUnit] | None = []
        self._fixer = AccessUnitFixer(StreamLayout(None, None))
        self._deliver: Deliver | None = None
        self._decoder = InterDecoder.h264()
        self._converter = FrameToI420(width, height)
        self._session = RtspSession(source.url, transport, timeout, self._on_unit, self._on_end)
        self.source_format = self._open(side)
        self.failure: str | None = None

    # --- opening --------------------------------------------------------------------

    def _open(self, side: LoopSide) -> SourceFormat:
        future = asyncio.run_coroutine_threadsafe(self._start(side), self._loop)
        try:
            return future.result(timeout=OPEN_TIMEOUTS * self._timeout + PROBE_SECONDS + 1)
        except NotReadHere as why:
            # Closed on the loop, when whoever reads the camera instead has it.
            why.hold(self._close_session)
            raise
        except SourceUnavailable:
            raise
        except RtspFailure as failure:
            raise SourceUnavailable(str(failure)) from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            self._close_session()
            raise SourceUnavailable(f"{self._description} did not open in time") from None

    async def _start(self, side: LoopSide) -> SourceFormat:
        """On the loop: play, look at the stream, and from then on handle its
        pictures (:meth:`_on_unit` runs on this same loop, so nothing here
        races with it)."""
        try:
            async with asyncio.timeout(OPEN_TIMEOUTS * self._timeout):
                await self._session.start()
        except TimeoutError:
            raise SourceUnavailable(
                f"{self._description} did not open within {OPEN_TIMEOUTS * self._timeout:g} s"
            ) from None
        track = self._session.track
        declared = track.parameter_sets if track is not None else None
        deadline = time.monotonic() + PROBE_SECONDS
        seen = self._probing or []
        while time.monotonic() < deadline and self._ended is None:
            if len(seen) >= PROBE_PICTURES and (declared or _parameter_sets(seen)):
                break
            await asyncio.sleep(0.05)
        if self._ended is not None:
            raise SourceUnavailable(self._ended)
        b_frames = any(slice_type(nal) == B_SLICE for unit in seen for nal in unit.nal_units)
        sets = declared or _parameter_sets(seen)
        found = _source_format(sets, b_frames)
        self._fixer = AccessUnitFixer(StreamLayout(None, sets))
        # Passthrough viewers start at the next IDR of this stream; the
        # pictures looked at are for the decoder only.
        if found.h264 is not None and side.deliver is not None:
            if side.restart is not None:
                side.restart()
            self._deliver = side.deliver
        self._probing = None
        with self._condition:
            for unit in seen:
                self._keep(self._fixer.fix_units(unit.nal_units))
        return found

    # --- the loop's side ------------------------------------------------------------

    def _on_unit(self, unit: DepacketizedUnit, arrived: float) -> None:
        if self._probing is not None:
            self._probing.append(unit)
            with self._condition:
                self._arrived += 1
                self._last_arrival = arrived
            return
        access_unit = self._fixer.fix_units(unit.nal_units)
        shown = bool(access_unit.data)  # not for delimiters or filler alone
        deliver = self._deliver
        if deliver is not None and shown:
            deliver(access_unit, arrived)
        if access_unit.nal_units:
            # What is kept (a GOP for a decoder) needs the Annex-B bytes only.
            access_unit = AccessUnit(access_unit.data, access_unit.keyframe)
        with self._condition:
            self._arrived += 1
            self._last_arrival = arrived
            if not shown:
                return
            self._keep(access_unit)
            if self._decoding:
                self._queue(access_unit)
                self._fresh = True
                self._condition.notify()
            elif self._reported == 0:
                self._condition.notify()  # the first picture: the camera is back

    def _keep(self, unit: AccessUnit) -> None:
        if unit.keyframe:
            self._since_idr = [unit]
            self._since_idr_bytes = len(unit.data)
        elif self._since_idr:
            self._since_idr.append(unit)
            self._since_idr_bytes += len(unit.data)
            if self._since_idr_bytes > REPLAY_LIMIT_BYTES:
                self._since_idr = []

    def _queue(self, unit: AccessUnit) -> None:
        if self._resync:
            if not unit.keyframe:
                return
            self._resync = False
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.clear()
            self._resync = not unit.keyframe
            if self._resync:
                return
        self._pending.append(unit)

    def _on_end(self, reason: str) -> None:
        with self._condition:
            if self._ended is None:
                self._ended = reason
            self._condition.notify()

    # --- the capture thread's side --------------------------------------------------

    @property
    def pictures_decoded(self) -> int:
        return self._decoder.pictures_decoded

    def set_pictures_wanted(self, wanted: bool) -> None:
        """Once pictures are wanted, the next access unit is decoded with the
        ones since the last IDR before it (not before: a viewer that only
        passes through its offer, on its way to the camera's own H.264,
        costs no decoding)."""
        with self._condition:
            if wanted == self._decoding:
                return
            self._decoding = wanted
            self._pending = collections.deque(self._since_idr if wanted else ())
            self._fresh = False
            self._resync = False

    def wait(self) -> News:
        """Until there is something for the capture thread: pictures to
        decode, the first picture of the stream, its end or stall, or an
        :meth:`interrupt`."""
        with self._condition:
            woke_at_deadline = False
            while True:
                now = time.monotonic()
                if self._ended is not None:
                    self.failure = self._ended
                    return News(self._take_count(), failure=self._ended)
                silent_until = self._last_arrival + self._timeout
                if now >= silent_until:
                    self.failure = f"nothing for {self._timeout:g} s"
                    strangers = self._session.strangers
                    if strangers:
                        self.failure += f"; {strangers} packets from other addresses dropped"
                    return News(self._take_count(), failure=self.failure)
                news = self._fresh or self._reported == 0 < self._arrived
                if self._interrupted or news or woke_at_deadline:
                    self._interrupted = False
                    break
                # A stream that keeps coming wakes the thread once per read
                # timeout: for the counters, and to see the demand.
                woke_at_deadline = not self._condition.wait(silent_until - now)
            units: list[AccessUnit] = []
            if self._fresh:
                units = list(self._pending)
                self._pending.clear()
                self._fresh = False
            count = self._take_count()
            at = self._last_arrival
        for unit in units:
            self._decoder.decode(av.Packet(unit.data))
        frame = self._decoder.take()
        picture = self._converter.convert(frame) if frame is not None else None
        return News(count, picture, at)

    def _take_count(self) -> int:
        count = self._arrived - self._reported
        self._reported = self._arrived
        return count

    def interrupt(self) -> None:
        """Wake a :meth:`wait` (the demand or the pictures wanted changed)."""
        with self._condition:
            self._interrupted = True
            self._condition.notify()

    def request_keyframe(self) -> bool:
        return False  # an RTSP camera cannot be asked

    def release(self) -> None:
        self._close_session()

    def _close_session(self) -> None:
        with self._condition:
            self._deliver = None
        with contextlib.suppress(RuntimeError):  # the loop closed: its sockets went with it
            self._loop.call_soon_threadsafe(self._session.close)


def _parameter_sets(units: list[DepacketizedUnit]) -> ParameterSets | None:
    sps = pps = None
    for unit in units:
        for nal in unit.nal_units:
            kind = nal[0] & 0x1F
            if kind == NAL_SPS and len(nal) >= 4:
                sps = nal
            elif kind == NAL_PPS:
                pps = nal
    return ParameterSets(sps, (pps,)) if sps is not None and pps is not None else None


def _source_format(sets: ParameterSets | None, b_frames: bool) -> SourceFormat:
    width = height = 0
    reorders: bool | None = None
    if sets is not None:
        try:
            info = parse_sps(sets.sps)
            width, height, reorders = info.width, info.height, info.reorders
        except ValueError:
            logger.debug("the camera's SPS could not be read")
    refused = None
    if sets is None:
        refused = "no parameter sets"
    elif b_frames or reorders:
        refused = "the stream has B-frames"
    return SourceFormat(
        codec="h264",
        width=width,
        height=height,
        h264=sets if refused is None else None,
        passthrough_refused=refused if sets is not None else None,
    )
