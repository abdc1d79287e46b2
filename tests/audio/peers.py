"""Real aiortc peers for the audio tests: a device side carrying the audio
adapter's tracks and viewers that listen (and talk)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import AsyncIterator

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.audio.door import Audio
from tests.audio.signals import RATE, Samples
from tests.loopback import restrict_ice_to_loopback

restrict_ice_to_loopback()


class Heard:
    """What a viewer's received audio track delivered, as mono 48 kHz."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self._track = track
        self._chunks: list[Samples] = []
        self.arrivals: list[float] = []
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await self._track.recv()
                assert isinstance(frame, av.AudioFrame)
                # Resampled to s16: int16 samples, copied out of the frame by astype.
                for converted in self._resampler.resample(frame):
                    self._chunks.append(converted.to_ndarray().reshape(-1).astype(np.int16))
                    self.arrivals.append(time.monotonic())

    def samples(self) -> Samples:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    def clear(self) -> None:
        self._chunks.clear()
        self.arrivals.clear()

    async def wait_for(self, seconds: float, within: float) -> Samples:
        deadline = time.monotonic() + within
        while len(self.samples()) < seconds * RATE:
            if time.monotonic() > deadline:
                raise AssertionError(f"heard {len(self.samples()) / RATE:.2f} s of {seconds} s")
            await asyncio.sleep(0.02)
        return self.samples()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class SamplesTrack(MediaStreamTrack):
    """A viewer's microphone: mono 48 kHz samples in 20 ms frames, paced by
    the clock (``speed`` above 1 sends faster than real time), looped."""

    kind = "audio"

    def __init__(self, samples: Samples, speed: float = 1.0) -> None:
        super().__init__()
        self._samples = samples
        self._speed = speed
        self._position = 0
        self._pts = 0
        self._start: float | None = None

    def set_samples(self, samples: Samples) -> None:
        self._samples = samples
        self._position = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame_samples = 960
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pts / RATE / self._speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk = np.take(
            self._samples, range(self._position, self._position + frame_samples), mode="wrap"
        )
        self._position = (self._position + frame_samples) % len(self._samples)
        frame = av.AudioFrame.from_ndarray(
            chunk.reshape(1, -1).astype(np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += frame_samples
        return frame


class Link:
    """One device-side connection and one viewer, connected."""

    def __init__(self, device: RTCPeerConnection, viewer: RTCPeerConnection) -> None:
        self.device = device
        self.viewer = viewer
        self.heard: Heard | None = None

    async def close(self) -> None:
        if self.heard is not None:
            await self.heard.stop()
        await self.viewer.close()
        await self.device.close()


async def connect(audio: Audio, talk: SamplesTrack | None = None, listen: bool = True) -> Link:
    """A viewer that listens to the door (and talks with ``talk``), and a
    device side wired to ``audio`` the way the peer adapter does it."""
    device = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    link = Link(device, viewer)
    loop = asyncio.get_running_loop()
    received: asyncio.Future[MediaStreamTrack] = loop.create_future()

    def on_track(track: MediaStreamTrack) -> None:
        if not received.done():
            received.set_result(track)

    viewer.on("track", on_track)
    direction = "sendrecv" if talk and listen else "sendonly" if talk else "recvonly"
    transceiver = viewer.addTransceiver("audio", direction=direction)
    if talk is not None:
        transceiver.sender.replaceTrack(talk)
    device.on("track", lambda track: audio.add_talker(track))
    await viewer.setLocalDescription(await viewer.createOffer())
    await device.setRemoteDescription(viewer.localDescription)
    device_transceiver = device.getTransceivers()[0]
    if listen:
        device_transceiver.direction = "sendrecv" if talk else "sendonly"
        device_transceiver.sender.replaceTrack(audio.track_for_listener())
    await device.setLocalDescription(await device.createAnswer())
    await viewer.setRemoteDescription(device.localDescription)
    if listen:
        link.heard = Heard(await asyncio.wait_for(received, 10))
    return link


@contextlib.asynccontextmanager
async def opened(audio: Audio) -> AsyncIterator[Audio]:
    await audio.open_microphone()
    await audio.open_speaker()
    try:
        yield audio
    finally:
        await audio.close()
