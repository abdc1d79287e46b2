"""Decoding an inter-coded stream (H.264) for the pictures viewers need.

A picture of such a stream needs the ones before it back to the last
keyframe, so decoding starts from there (the packets since it are kept by
whoever reads the stream) and then takes every packet; of what comes out,
only the newest picture is kept for the capture thread to take.
"""

from __future__ import annotations

from typing import Any

import av


class InterDecoder:
    def __init__(self, decoder: av.VideoCodecContext) -> None:
        self._decoder = decoder
        self._newest: av.VideoFrame | None = None
        self.pictures_decoded = 0
        self.use(decoder)

    def use(self, decoder: av.VideoCodecContext) -> None:
        """Decode with ``decoder`` from now on (a file reopened to loop it)."""
        # One thread: frame threading would hold pictures back by a frame per
        # thread, and the capture thread is the decoder's thread anyway.
        decoder.thread_count = 1
        self._decoder = decoder
        self._newest = None

    @classmethod
    def h264(cls) -> InterDecoder:
        decoder = av.CodecContext.create("h264", "r")
        assert isinstance(decoder, av.VideoCodecContext)
        return cls(decoder)

    def decode(self, packet: av.Packet[Any]) -> None:
        try:
            frames = self._decoder.decode(packet)
        except av.InvalidDataError:
            return  # a picture whose references are missing: the next keyframe mends it
        for frame in frames:
            if isinstance(frame, av.VideoFrame):
                self._newest = frame
                self.pictures_decoded += 1

    def take(self) -> av.VideoFrame | None:
        """The newest picture decoded since the last take."""
        frame, self._newest = self._newest, None
        return frame
