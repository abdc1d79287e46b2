"""The devices behind ``AUDIO_SOURCE`` and ``AUDIO_SINK``, opened for the
capture and playback threads: 10 ms blocks, each with its moment.

A microphone returns each block with the ``time.monotonic()`` moment its
first sample was captured; a speaker, on writing a block, says when its
first sample will be heard. Both come from ALSA's own delay, so the echo
canceller's reference lines up with what the microphone hears.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

import numpy as np

from intercom_fsm.adapters.audio.alsa import AlsaError, Pcm
from intercom_fsm.adapters.audio.blocks import BLOCK, BLOCK_SECONDS, RATE, Samples
from intercom_fsm.adapters.audio.settings import AlsaDevice, AudioSink, AudioSource, ToneSource

TONE_AMPLITUDE = 0.25
"""The test tone's peak, full scale = 1 (-15 dBFS RMS)."""


class Microphone(Protocol):
    @property
    def overruns(self) -> int: ...

    def read(self) -> tuple[Samples, float]:
        """The next block and the moment its first sample was captured."""
        ...

    def close(self) -> None: ...


class Speaker(Protocol):
    @property
    def underruns(self) -> int: ...

    def write(self, block: Samples) -> float:
        """Play ``block`` (blocks while the device is full); returns the
        moment its first sample will be heard."""
        ...

    def close(self) -> None: ...


class AlsaMicrophone:
    def __init__(self, name: str, latency: float) -> None:
        self._pcm = Pcm(name, capture=True, rate=RATE, latency=latency)

    @property
    def overruns(self) -> int:
        return self._pcm.overruns

    def read(self) -> tuple[Samples, float]:
        block = self._pcm.read(BLOCK)
        now = time.monotonic()
        return block, now - (self._pcm.delay() + BLOCK) / RATE

    def close(self) -> None:
        self._pcm.close()


class ToneMicrophone:
    """A sine at ``hz``, paced by the clock like a sound card."""

    overruns = 0

    def __init__(self, hz: float, stop: threading.Event | None = None) -> None:
        self._step = 2 * math.pi * hz / RATE
        self._phase = 0.0
        self._next = time.monotonic()
        self._stop = stop or threading.Event()
        self._amplitude = TONE_AMPLITUDE * 32767

    def read(self) -> tuple[Samples, float]:
        now = time.monotonic()
        if now - self._next > 10 * BLOCK_SECONDS:
            self._next = now  # the reader fell far behind: do not replay the past
        self._stop.wait(max(0.0, self._next + BLOCK_SECONDS - now))
        phases = self._phase + self._step * np.arange(BLOCK)
        self._phase = float((self._phase + self._step * BLOCK) % (2 * math.pi))
        captured_at = self._next
        self._next += BLOCK_SECONDS
        return np.rint(self._amplitude * np.sin(phases)).astype(np.int16), captured_at

    def close(self) -> None:
        pass


class AlsaSpeaker:
    def __init__(self, name: str, latency: float) -> None:
        self._pcm = Pcm(name, capture=False, rate=RATE, latency=latency)

    @property
    def underruns(self) -> int:
        return self._pcm.overruns

    @property
    def buffer_seconds(self) -> float:
        return self._pcm.buffer_seconds

    def write(self, block: Samples) -> float:
        self._pcm.write(block)
        return time.monotonic() + (self._pcm.delay() - len(block)) / RATE

    def close(self) -> None:
        self._pcm.close()


def open_microphone(
    source: AudioSource, latency: float, stop: threading.Event | None = None
) -> Microphone:
    """Raises :class:`AlsaError` when the device cannot be opened."""
    if isinstance(source, ToneSource):
        return ToneMicrophone(source.hz, stop)
    if isinstance(source, AlsaDevice):
        return AlsaMicrophone(source.name, latency)
    raise AlsaError("no microphone configured (AUDIO_SOURCE=none)")


def open_speaker(sink: AudioSink, latency: float) -> Speaker:
    if isinstance(sink, AlsaDevice):
        return AlsaSpeaker(sink.name, latency)
    raise AlsaError("no speaker configured (AUDIO_SINK=none)")
