"""Time-stamped chirps for the audio bench: a mouth and an ear at each end.

A chirp is a 20 ms sweep; a matched filter finds its onset to the sample in
whatever comes back, so latency is read from the sound itself, not from any
client's own counters. The two directions use different bands (the door's
600 Hz to 1.8 kHz, the viewer's 3 to 6 kHz): the same sweep both ways would
look like an echo to the canceller, which would rightly remove it.

* door side: :class:`DoorMouth` plays chirps into the sound server's
  microphone sink through ALSA and knows, from ALSA's delay, when each one
  is heard; :class:`DoorEar` captures the speaker's monitor through ALSA with
  each block's capture moment;
* viewer side: :class:`ChirpTrack` is a viewer's microphone whose chirps are
  stamped when aiortc takes them; :class:`ViewerEar` keeps a received track's
  samples with the moment each frame was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import threading
import time

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.audio.alsa import AlsaError, Pcm

RATE = 48_000
BLOCK = 480
FRAME = 960
Samples = npt.NDArray[np.int16]


def chirp(seconds: float = 0.02, low: float = 1000.0, high: float = 4000.0) -> Samples:
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * (low * t + (high - low) * t * t / (2 * seconds))
    wave = np.sin(phase) * np.hanning(len(t))
    return np.rint(wave * 0.3 * 32767).astype(np.int16)


DOOR_CHIRP = chirp(low=600.0, high=1800.0)
VIEWER_CHIRP = chirp(low=3000.0, high=6000.0)


def onsets(
    samples: Samples, pattern: Samples, threshold: float = 0.5, spacing: float = 0.3
) -> list[int]:
    """Sample indexes where ``pattern`` starts (matched filter peaks)."""
    if len(samples) < len(pattern):
        return []
    x = samples.astype(np.float64)
    template = pattern.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(x) + len(template))))
    score = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(template, n)), n)
    score = score[: len(x) - len(template) + 1]
    reference = float(np.sum(template**2))
    found: list[int] = []
    gap = round(spacing * RATE)
    candidates = np.flatnonzero(score > threshold * reference * 0.05)
    for index in candidates:
        if found and index - found[-1] < gap:
            if score[index] > score[found[-1]]:
                found[-1] = int(index)
            continue
        found.append(int(index))
    return found


class DoorMouth:
    """Chirps into the door's microphone every ``interval`` seconds."""

    def __init__(self, pcm_name: str, interval: float) -> None:
        self._pcm_name = pcm_name
        self._interval = interval
        self._stop = threading.Event()
        self.played: list[float] = []
        self._thread = threading.Thread(target=self._run, name="bench-mouth", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        pcm = Pcm(self._pcm_name, capture=False, rate=RATE, latency=0.02)
        every = round(self._interval * RATE)
        position = every // 2
        try:
            while not self._stop.is_set():
                block = np.zeros(BLOCK, dtype=np.int16)
                starts = [k * every for k in (position // every, position // every + 1)]
                for begin in starts:
                    low = max(begin, position)
                    high = min(begin + len(DOOR_CHIRP), position + BLOCK)
                    if low < high:
                        part = DOOR_CHIRP[low - begin : high - begin]
                        block[low - position : high - position] = part
                pcm.write(block)
                heard = time.monotonic() + (pcm.delay() - BLOCK) / RATE
                for begin in starts:
                    if position <= begin < position + BLOCK:
                        self.played.append(heard + (begin - position) / RATE)
                position += BLOCK
        except AlsaError:
            pass
        finally:
            pcm.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)


class DoorEar:
    """What the door's speaker plays, with each sample's moment."""

    def __init__(self, pcm_name: str) -> None:
        self._pcm_name = pcm_name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._blocks: list[Samples] = []
        self._times: list[float] = []
        self._thread = threading.Thread(target=self._run, name="bench-ear", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        pcm = Pcm(self._pcm_name, capture=True, rate=RATE, latency=0.02)
        try:
            while not self._stop.is_set():
                block = pcm.read(BLOCK)
                captured = time.monotonic() - (pcm.delay() + BLOCK) / RATE
                with self._lock:
                    self._blocks.append(block)
                    self._times.append(captured)
        except AlsaError:
            pass
        finally:
            pcm.close()

    def chirp_times(self) -> list[float]:
        with self._lock:
            blocks, times = list(self._blocks), list(self._times)
        if not blocks:
            return []
        samples = np.concatenate(blocks)
        return [times[i // BLOCK] + (i % BLOCK) / RATE for i in onsets(samples, VIEWER_CHIRP)]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)


class ChirpTrack(MediaStreamTrack):
    """A viewer's microphone: a chirp every ``interval`` s, stamped when
    aiortc takes the frame that carries it."""

    kind = "audio"

    def __init__(self, interval: float, signal: Samples | None = None) -> None:
        super().__init__()
        self._every = round(interval * RATE)
        self._signal = signal
        self._pts = 0
        self._start: float | None = None
        self.sent: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._pts / RATE - time.monotonic()))
        if self._signal is not None:
            span = range(self._pts, self._pts + FRAME)
            samples = np.take(self._signal, span, mode="wrap").astype(np.int16)
        else:
            samples = np.zeros(FRAME, dtype=np.int16)
            offset = (-self._pts) % self._every
            if offset < FRAME:
                length = min(len(VIEWER_CHIRP), FRAME - offset)
                samples[offset : offset + length] = VIEWER_CHIRP[:length]
                self.sent.append(time.monotonic() + offset / RATE)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._pts
        self._pts += FRAME
        return frame


class ViewerEar:
    """A viewer's received audio: samples and the moment each frame came."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self._track = track
        self._chunks: list[Samples] = []
        self._ends: list[float] = []
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await self._track.recv()
                now = time.monotonic()
                assert isinstance(frame, av.AudioFrame)
                # Resampled to s16: int16 samples, copied out of the frame by astype.
                for converted in self._resampler.resample(frame):
                    self._chunks.append(converted.to_ndarray().reshape(-1).astype(np.int16))
                    self._ends.append(now)

    def samples(self) -> Samples:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    def chirp_times(self) -> list[float]:
        if not self._chunks:
            return []
        lengths = np.array([len(c) for c in self._chunks])
        ends = np.cumsum(lengths)
        times = []
        for index in onsets(self.samples(), DOOR_CHIRP):
            chunk = int(np.searchsorted(ends, index, side="right"))
            # The frame was delivered when its last sample was; this one is earlier.
            times.append(self._ends[chunk] - (ends[chunk] - index) / RATE)
        return times

    def clear(self) -> None:
        self._chunks.clear()
        self._ends.clear()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def latencies(
    sent: list[float], heard: list[float], limit: float = 3.0
) -> list[tuple[float, float]]:
    """(sent time, latency) of each sent chirp heard within ``limit`` s."""
    pairs = []
    heard_sorted = sorted(heard)
    for moment in sent:
        later = [h for h in heard_sorted if -0.005 <= h - moment < limit]
        if later:
            pairs.append((moment, later[0] - moment))
    return pairs
