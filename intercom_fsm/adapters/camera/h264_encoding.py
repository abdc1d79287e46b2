"""One H.264 encoder shared by every viewer that negotiated H.264 but cannot
take the camera's own stream (an MJPEG camera, or a viewer that does not
accept the camera's profile).

It works as the shared VP8 encoder does (:mod:`.encoding`): each picture of
the hub is encoded once, on the encoder's own thread (:mod:`.encoder_parts`),
and every such viewer's track
hands aiortc the packets; a joiner or a loss report asks for a keyframe
(loss reports at most one per :data:`KEYFRAME_MIN_INTERVAL`). The stream is
Constrained Baseline with the parameter sets before every IDR (checked by
:class:`AccessUnitFixer`, whatever the encoder emits).

The encoder is the one :mod:`.h264_encoders` chose: the board's hardware
encoder where there is one. If it fails (at open or on any picture) libx264
takes over at once and for good, starting with a keyframe of that same
picture: viewers see one picture late, none is dropped, no connection ends.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import av
from av.video.frame import PictureType

from intercom_fsm.adapters.camera.encoder_parts import EncoderThread, Subscribers
from intercom_fsm.adapters.camera.frames import VIDEO_TIME_BASE, Picture, video_frame
from intercom_fsm.adapters.camera.h264 import AccessUnitFixer, StreamLayout
from intercom_fsm.adapters.camera.h264_encoders import (
    EncoderChoice,
    H264Encoder,
    OpenH264Encoder,
    closing,
    open_h264_encoder,
    software,
)
from intercom_fsm.adapters.camera.hub import EncodedPackets, FrameHub
from intercom_fsm.adapters.camera.keyframe_queue import KeyframeQueue
from intercom_fsm.adapters.rtp_payloads import Payloads, SharedPayloads

logger = logging.getLogger(__name__)

H264_MIME = "video/h264"
KEYFRAME_MIN_INTERVAL = 0.5


class SharedH264Encoder:
    """Encodes the hub's pictures once while anyone subscribes."""

    def __init__(
        self,
        hub: FrameHub,
        width: int,
        height: int,
        fps: float,
        bitrate: int,
        choice: EncoderChoice,
        open_encoder: OpenH264Encoder = open_h264_encoder,
    ) -> None:
        self._payloads = SharedPayloads(H264_MIME)
        self._size = (width, height)
        self._fps = fps
        self.bitrate = bitrate
        self.choice = choice
        self._open_encoder = open_encoder
        self._encoder: H264Encoder | None = None
        self._fixer = AccessUnitFixer(StreamLayout(None, None))
        self._keyframe_wanted = True
        self._last_keyframe = -float("inf")
        self._viewers: Subscribers[KeyframeQueue] = Subscribers(
            hub, self._encode_picture, self._release, name="shared H.264 encoder", log=logger
        )
        self._thread = EncoderThread("intercom-h264")
        self.pictures_encoded = 0
        self.keyframes = 0
        self.fallbacks = 0

    def subscribe(self, viewer: str = "") -> KeyframeQueue:
        self.request_keyframe(urgent=True)
        return self._viewers.add(KeyframeQueue(on_reset=self.request_keyframe))

    def unsubscribe(self, queue: EncodedPackets) -> None:
        if isinstance(queue, KeyframeQueue):
            self._viewers.remove(queue)

    def request_keyframe(self, urgent: bool = False) -> None:
        if urgent or time.monotonic() - self._last_keyframe >= KEYFRAME_MIN_INTERVAL:
            self._keyframe_wanted = True

    async def close(self) -> None:
        await self._viewers.close()

    async def _encode_picture(self, picture: Picture) -> None:
        packets = await self._thread.run(self._encode, self._frame(picture))
        self.pictures_encoded += 1
        for packet in packets:
            self._deliver(packet)

    def _release(self) -> None:
        self._thread.close()
        if self._encoder is not None:
            closing(self._encoder)
            self._encoder = None

    def _encode(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        """On the encoder's thread: encode, replacing a failed hardware encoder."""
        try:
            return self._encode_with(self._current_encoder(), frame)
        except Exception as error:
            if not self.choice.hardware:
                raise
            self._fall_back(error)
            frame.pict_type = PictureType.I
            return self._encode_with(self._current_encoder(), frame)

    def _current_encoder(self) -> H264Encoder:
        if self._encoder is None:
            width, height = self._size
            self._encoder = self._open_encoder(self.choice, width, height, self._fps, self.bitrate)
        return self._encoder

    def _encode_with(self, encoder: H264Encoder, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        packets = []
        for packet in encoder.encode(frame):
            unit = self._fixer.fix(bytes(packet))
            if not unit.data:
                continue
            fixed = av.Packet(unit.data)
            fixed.pts = packet.pts if packet.pts is not None else frame.pts
            fixed.dts = fixed.pts
            fixed.time_base = VIDEO_TIME_BASE
            fixed.is_keyframe = unit.keyframe
            packets.append(fixed)
        return packets

    def _fall_back(self, error: Exception) -> None:
        failed = self.choice
        logger.warning(
            "the hardware H.264 encoder %s failed (%s); libx264 takes over",
            failed.device or failed.codec,
            type(error).__name__,
        )
        if self._encoder is not None:
            closing(self._encoder)
        self._encoder = None
        self.choice = software(f"{failed.codec} failed ({type(error).__name__})")
        self.fallbacks += 1

    def payloads_of(self, packet: av.Packet[Any]) -> Payloads | None:
        """``packet``'s RTP payloads, cut once for every viewer."""
        return self._payloads.get(packet)

    def _deliver(self, packet: av.Packet[Any]) -> None:
        self._payloads.add(packet)
        keyframe = bool(packet.is_keyframe)
        if keyframe:
            self.keyframes += 1
            self._last_keyframe = time.monotonic()
        for queue in list(self._viewers.queues):
            queue.put(packet, keyframe)

    def _frame(self, picture: Picture) -> av.VideoFrame:
        frame = video_frame(picture, self._viewers.pictures.pts(picture))
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            frame.pict_type = PictureType.I
        return frame
