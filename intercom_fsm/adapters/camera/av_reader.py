"""Network streams, video files and V4L2 cameras' own H.264 or MJPEG through
PyAV: demuxed packet by packet, decoded straight to I420, H.264 packets also
handed over as they came.

What one :meth:`PyAvReader.grab` does depends on the codec:

* intra-only codecs (MJPEG): it takes the next picture's packet; the picture
  is decoded only if :meth:`retrieve` asks for it, so pictures the capture
  thread skips cost nothing but the demuxing;
* H.264 and other inter codecs: every packet must reach the decoder once a
  picture is wanted, so ``grab`` decodes (only while pictures are wanted at
  all: when every viewer takes the camera's own H.264 packets nothing is
  decoded). Packets since the last IDR are kept, so decoding can start at
  once, from that IDR, when the first viewer that needs pictures comes.

H.264 packets are rewritten into Annex-B access units with the parameter
sets before every IDR (:mod:`.h264`) when the stream can be passed through:
no B-frames (a WebRTC stream is sent in decode order and played as it
comes).

A stalled stream cannot block: PyAV interrupts any open or read that takes
longer than ``network_timeout`` (RTSP also gets FFmpeg's own socket timeout).
FFmpeg's V4L2 input would wait for a picture in a blocking ``ioctl`` that
nothing interrupts, forever for a camera that hangs without going away, so
the camera is opened non-blocking: a read without a picture ready returns at
once and the reader waits in ``poll`` on FFmpeg's descriptor, at most
``network_timeout``. (While FFmpeg probes the stream at open it retries on
its own, which costs CPU until the camera's first picture.)

An RTSP camera or a file cannot be asked for a keyframe; a V4L2 H.264
camera can (:func:`.v4l2.force_keyframe`), and is asked when a viewer joins
or loses pictures (:meth:`PyAvReader.request_keyframe`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import av
import av.container

from intercom_fsm.adapters.camera import v4l2
from intercom_fsm.adapters.camera.frames import I420
from intercom_fsm.adapters.camera.h264 import AccessUnit, AccessUnitFixer, parse_extradata
from intercom_fsm.adapters.camera.inter_decoder import InterDecoder
from intercom_fsm.adapters.camera.readers import (
    DeviceStream,
    ReaderSettings,
    SourceFormat,
    SourceUnavailable,
)
from intercom_fsm.adapters.camera.sources import StreamUrl, VideoFile
from intercom_fsm.adapters.camera.yuv import FrameToI420

logger = logging.getLogger(__name__)

MAX_FILE_FPS = 240.0
"""A file claiming a higher rate (or none) is played at the configured fps."""
REPLAY_LIMIT_BYTES = 8 * 1024 * 1024
"""The packets kept since the last IDR; a longer GOP is not replayed (the
decoding then starts at the next IDR)."""
V4L2_FORMAT = "video4linux2"
"""FFmpeg's V4L2 capture input (the PyAV wheel has it)."""
AVFMT_FLAG_NONBLOCK = 0x0004
"""FFmpeg's flag (no name in the ``fflags`` option) to open a device non-blocking."""
DEVICE_RETRY_SECONDS = 0.005
"""How soon a V4L2 camera is asked again when its descriptor could not be
found to wait on (``/proc`` not mounted, say)."""
PROBE_BYTES = 500_000
PROBE_MICROSECONDS = 500_000
"""How much of a stream FFmpeg reads to learn its format before the first
packet: enough for one picture and the stream's parameters, not the default
5 s, which would delay every open by that much."""


Source = StreamUrl | VideoFile | DeviceStream


def open_options(source: Source, options: ReaderSettings) -> dict[str, str]:
    """FFmpeg's options for opening ``source``."""
    if isinstance(source, VideoFile):
        return {}
    opened: dict[str, str] = {
        "probesize": str(PROBE_BYTES),
        "analyzeduration": str(PROBE_MICROSECONDS),
        "fflags": "nobuffer",
    }
    if isinstance(source, DeviceStream):
        # The driver picks its nearest size and rate when it has not these.
        return opened | {
            "fflags": f"nobuffer+{AVFMT_FLAG_NONBLOCK}",
            "input_format": source.input_format,
            "video_size": f"{options.width}x{options.height}",
            "framerate": f"{options.fps:g}",
        }
    if source.url.lower().startswith(("rtsp:", "rtsps:")):
        opened |= {
            "rtsp_transport": options.rtsp_transport,
            "timeout": str(round(options.network_timeout * 1_000_000)),
            "allowed_media_types": "video",
        }
    return opened


class PyAvReader:
    def __init__(self, source: Source, options: ReaderSettings) -> None:
        self._source = source
        self._options = options
        self._container = self._open()
        try:
            self._stream = self._container.streams.video[0]
        except IndexError:
            self._container.close()
            raise SourceUnavailable(f"{source.description} has no video") from None
        decoder = self._stream.codec_context
        self._inter = InterDecoder(decoder)
        self._intra_only = bool(decoder.codec.intra_only)
        self._converter = FrameToI420(options.width, options.height)
        self._fixer, refused = self._passthrough_fixer()
        self.source_format = SourceFormat(
            codec=decoder.name,
            width=self._stream.width,
            height=self._stream.height,
            h264=self._fixer.parameter_sets if self._fixer else None,
            passthrough_refused=refused,
        )
        self._interval = 0.0
        if isinstance(source, VideoFile):
            rate = self._stream.average_rate or self._stream.guessed_rate
            native = float(rate) if rate else 0.0
            self._interval = 1.0 / (native if 0.0 < native <= MAX_FILE_FPS else options.fps)
        self._packets = self._container.demux(self._stream)
        self.failure: str | None = None
        """Why the last :meth:`grab` failed, in words (None when it did not)."""
        self._device: int | None = None
        if isinstance(source, DeviceStream):
            self._device = next(iter(v4l2.descriptors_open_on(source.node)), None)
        self._packet: av.Packet[Any] | None = None
        self._access_unit: AccessUnit | None = None
        self._pictures_wanted = True
        self._decoding = False
        self._since_keyframe: list[av.Packet[Any]] = []
        self._since_keyframe_bytes = 0
        self._pictures_from_intra = 0

    @property
    def read_interval(self) -> float:
        return self._interval

    @property
    def pictures_decoded(self) -> int:
        return self._pictures_from_intra + self._inter.pictures_decoded

    def set_pictures_wanted(self, wanted: bool) -> None:
        self._pictures_wanted = wanted

    def grab(self) -> bool:
        packet = self._next_packet()
        if packet is None:
            return False
        self._packet = packet
        self._access_unit = None
        if self._fixer is not None:
            unit = self._fixer.fix(bytes(packet))
            self._access_unit = unit if unit.data else None  # delimiters or filler alone
        if not self._intra_only:
            self._keep_for_replay(packet)
            self._decode_inter(packet)
        return True

    def encoded(self) -> AccessUnit | None:
        return self._access_unit

    def request_keyframe(self) -> bool:
        source = self._source
        if isinstance(source, DeviceStream) and source.input_format == "h264":
            return v4l2.force_keyframe(source.node)
        return False

    def retrieve(self) -> I420 | None:
        if self._intra_only:
            if self._packet is None:
                return None
            frames = self._stream.codec_context.decode(self._packet)
            self._packet = None
            if not frames:
                return None
            self._pictures_from_intra += 1
            frame = frames[-1]
        else:
            decoded = self._inter.take()
            if decoded is None:
                return None
            frame = decoded
        assert isinstance(frame, av.VideoFrame)
        return self._converter.convert(frame)

    def release(self) -> None:
        self._since_keyframe.clear()
        self._container.close()

    # --- opening --------------------------------------------------------------------

    def _open(self) -> av.container.InputContainer:
        source, options = self._source, self._options
        if isinstance(source, DeviceStream):
            name, container_format = source.node, V4L2_FORMAT
        else:
            name = source.url if isinstance(source, StreamUrl) else source.path
            container_format = None
        timeout = None if isinstance(source, VideoFile) else options.network_timeout
        try:
            return av.open(
                name,
                mode="r",
                format=container_format,
                options=open_options(source, options),
                timeout=timeout,
            )
        except av.FFmpegError as error:
            # The error's filename is the URL, credentials included: only its reason.
            raise SourceUnavailable(
                f"cannot open {source.description} ({error.strerror or type(error).__name__})"
            ) from None

    def _passthrough_fixer(self) -> tuple[AccessUnitFixer | None, str | None]:
        decoder = self._stream.codec_context
        if decoder.name != "h264":
            return None, None
        if decoder.has_b_frames:
            return None, "the stream has B-frames"
        try:
            layout = parse_extradata(decoder.extradata)
        except ValueError as error:
            return None, str(error)
        return AccessUnitFixer(layout), None

    # --- reading --------------------------------------------------------------------

    def _next_packet(self) -> av.Packet[Any] | None:
        self.failure = None
        for _ in range(2):
            started = time.monotonic()
            try:
                while (packet := self._read_packet(started)) is not None:
                    if self._timed_out(started):
                        # FFmpeg's RTSP demuxer hands over a scrap of a packet
                        # when a read is interrupted, and fails only on the next.
                        self.failure = self._silence()
                        return None
                    if packet.size:
                        return packet
            except av.FFmpegError as error:
                logger.debug("reading %s: %s", self._source.description, error.strerror)
                # An interrupted read says only that it was interrupted.
                timed_out = self._timed_out(started)
                self.failure = self._silence() if timed_out else error.strerror or None
                return None
            if not isinstance(self._source, VideoFile) or not self._rewind():
                self.failure = self._silence() if self._timed_out(started) else "it ended"
                return None
        return None

    def _silence(self) -> str:
        return f"nothing for {self._options.network_timeout:g} s"

    def _read_packet(self, started: float) -> av.Packet[Any] | None:
        """The next packet; None at the end of the stream or once a V4L2
        camera had no picture for ``network_timeout``."""
        while True:
            try:
                return next(self._packets, None)
            except BlockingIOError:  # a V4L2 camera without a picture yet
                self._packets = self._container.demux(self._stream)
                left = self._options.network_timeout - (time.monotonic() - started)
                if left <= 0:
                    return None
                if self._device is None:
                    time.sleep(min(left, DEVICE_RETRY_SECONDS))
                elif not v4l2.wait_for_picture(self._device, left):
                    return None

    def _timed_out(self, started: float) -> bool:
        if isinstance(self._source, VideoFile):
            return False
        return time.monotonic() - started >= self._options.network_timeout

    def _rewind(self) -> bool:
        """Back to the start of a file, to loop it."""
        try:
            self._container.seek(0)
            self._stream.codec_context.flush_buffers()
        except av.FFmpegError:
            self._container.close()
            try:
                self._container = self._open()
            except SourceUnavailable:
                return False
            self._stream = self._container.streams.video[0]
            self._inter.use(self._stream.codec_context)
        self._packets = self._container.demux(self._stream)
        return True

    def _keep_for_replay(self, packet: av.Packet[Any]) -> None:
        if packet.is_keyframe:
            self._since_keyframe.clear()
            self._since_keyframe_bytes = 0
        elif not self._since_keyframe:
            return  # no IDR seen yet: nothing a decoder could start from
        self._since_keyframe.append(packet)
        self._since_keyframe_bytes += packet.size
        if self._since_keyframe_bytes > REPLAY_LIMIT_BYTES:
            self._since_keyframe.clear()

    def _decode_inter(self, packet: av.Packet[Any]) -> None:
        if not self._pictures_wanted:
            self._decoding = False
            return
        if not self._decoding:
            # Start from the last IDR: decode what came since, keep the newest.
            self._decoding = True
            if not self._since_keyframe:
                self.request_keyframe()  # none yet: a V4L2 camera sends one now
            for kept in self._since_keyframe[:-1]:
                self._inter.decode(kept)
        self._inter.decode(packet)
