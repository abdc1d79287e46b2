"""The talking viewers' sound on its way to the speaker: a bounded buffer per
viewer, and the mix.

A viewer's sound arrives at the network's pace (its microphone's clock, in
bursts); the speaker takes it at the sound card's. The two clocks never
agree exactly, so :class:`PlayoutBuffer` steers its depth to a target:

* it starts playing once ``target`` is buffered (a cushion for jitter);
* when its smoothed depth stays more than :data:`DEADBAND` away from the
  target, each 10 ms block is played from slightly more or fewer samples
  (in proportion to the excess, at most :data:`MAX_STRETCH`, 2 %), which
  brings it back: one drift correction per block so played;
* past ``maximum`` the oldest sound is dropped at once (a burst after a
  network stall), back to the target: also a drift correction;
* when it runs dry it fades out the little it has and plays silence (an
  underrun), then waits for the target again: never a repeated block.

Delay therefore never accumulates: it stays within ``maximum`` whatever the
clocks do. ``push`` runs on the event loop, ``pull`` on the speaker thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from intercom_fsm.adapters.audio.blocks import BLOCK, RATE, Samples, to_int16

SAWTOOTH = BLOCK // 2
"""20 ms frames arriving into 10 ms pulls leave the depth 5 ms above where
the last frame found it, on average: the depth that needs no correction."""
DEADBAND = RATE * 5 // 1000
MAX_STRETCH = BLOCK // 50
"""2 % of a block."""
SAMPLES_PER_STEP = 48
"""One sample of stretch per millisecond of error beyond the deadband."""
SMOOTHING = 0.05
"""Weight of each block in the smoothed depth (about 200 ms)."""
FADE = 48
"""Samples of fade-out before the silence of an underrun (1 ms)."""
TALKING_FOR = 0.5
"""A viewer whose sound arrived this recently is talking."""


class PlayoutBuffer:
    def __init__(self, target: int, maximum: int) -> None:
        self._lock = threading.Lock()
        self._target = target
        self._maximum = maximum
        self._data = np.zeros(0, dtype=np.int16)
        self._playing = False
        self._smoothed = float(target)
        self._last_push = -float("inf")
        self.underruns = 0
        self.drift_corrections = 0
        self.dropped_samples = 0
        self.received = 0

    @property
    def depth(self) -> int:
        with self._lock:
            return len(self._data)

    def talking(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self._last_push < TALKING_FOR

    def push(self, samples: Samples, now: float | None = None) -> None:
        with self._lock:
            self._last_push = time.monotonic() if now is None else now
            self.received += 1
            self._data = np.concatenate((self._data, samples))
            if len(self._data) > self._maximum:
                excess = len(self._data) - self._target
                self._data = self._data[excess:]
                self.dropped_samples += excess
                self.drift_corrections += 1
                self._smoothed = float(self._target)

    def pull(self) -> Samples | None:
        """The next block, or None when there is nothing to play."""
        with self._lock:
            depth = len(self._data)
            if not self._playing:
                if depth < self._target:
                    return None
                self._playing = True
                self._smoothed = float(depth)
            if depth < BLOCK:
                return self._underrun()
            self._smoothed += SMOOTHING * (depth - self._smoothed)
            error = self._smoothed - self._target - SAWTOOTH
            step = 0
            if abs(error) > DEADBAND:
                excess = error - DEADBAND if error > 0 else error + DEADBAND
                step = int(np.clip(round(excess / SAMPLES_PER_STEP), -MAX_STRETCH, MAX_STRETCH))
                step = step or (1 if error > 0 else -1)
            taken = min(depth, BLOCK + step)
            chunk = self._data[:taken]
            self._data = self._data[taken:]
            if taken == BLOCK:
                return chunk.copy()
            self.drift_corrections += 1
            return _resample(chunk, BLOCK)

    def _underrun(self) -> Samples:
        self.underruns += 1
        self._playing = False
        out = np.zeros(BLOCK, dtype=np.int16)
        left = self._data
        self._data = np.zeros(0, dtype=np.int16)
        if len(left):
            fade = np.linspace(1.0, 0.0, min(len(left), FADE))
            tail = left.astype(np.float64)
            tail[-len(fade) :] *= fade
            out[: len(left)] = to_int16(tail)
        return out


def _resample(chunk: Samples, length: int) -> Samples:
    """``chunk`` played in ``length`` samples (linear interpolation)."""
    positions = np.linspace(0, len(chunk) - 1, length)
    return to_int16(np.interp(positions, np.arange(len(chunk)), chunk.astype(np.float64)))


class Mixer:
    """Every talking viewer's buffer, summed into one block per pull."""

    def __init__(self, target: int, maximum: int) -> None:
        self._lock = threading.Lock()
        self._target = target
        self._maximum = maximum
        self._buffers: list[PlayoutBuffer] = []
        self._gone_underruns = 0
        self._gone_corrections = 0
        self._gone_received = 0

    def add(self) -> PlayoutBuffer:
        buffer = PlayoutBuffer(self._target, self._maximum)
        with self._lock:
            self._buffers.append(buffer)
        return buffer

    def remove(self, buffer: PlayoutBuffer) -> None:
        with self._lock:
            if buffer in self._buffers:
                self._buffers.remove(buffer)
                self._gone_underruns += buffer.underruns
                self._gone_corrections += buffer.drift_corrections
                self._gone_received += buffer.received

    def mix(self) -> tuple[Samples, bool]:
        """One block of everyone's sound, and whether anyone was in it."""
        with self._lock:
            buffers = list(self._buffers)
        total = np.zeros(BLOCK, dtype=np.int32)
        heard = False
        for buffer in buffers:
            block = buffer.pull()
            if block is not None:
                total += block
                heard = True
        return np.clip(total, -32768, 32767).astype(np.int16), heard

    def snapshot(self) -> tuple[int, int, int, int, int]:
        """(deepest buffer in samples, underruns, drift corrections, frames
        received, talking viewers)."""
        with self._lock:
            buffers = list(self._buffers)
            underruns, corrections, received = (
                self._gone_underruns,
                self._gone_corrections,
                self._gone_received,
            )
        now = time.monotonic()
        return (
            max((b.depth for b in buffers), default=0),
            underruns + sum(b.underruns for b in buffers),
            corrections + sum(b.drift_corrections for b in buffers),
            received + sum(b.received for b in buffers),
            sum(1 for b in buffers if b.talking(now)),
        )
