"""The unit of sound inside the adapter: 10 ms of mono 16-bit at 48 kHz.

Everything between the devices and Opus runs at one rate and one block size
(what the WebRTC audio processing module works in); levels are in dBFS, a
full-scale sine being -3 dBFS.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

RATE = 48_000
BLOCK = RATE // 100
"""Samples in one 10 ms block."""
BLOCK_SECONDS = BLOCK / RATE
OPUS_FRAME = 2 * BLOCK
"""Samples in one 20 ms Opus frame."""
SILENCE_DBFS = -120.0
FULL_SCALE = 32768.0

Samples = npt.NDArray[np.int16]


def silence(samples: int = BLOCK) -> Samples:
    return np.zeros(samples, dtype=np.int16)


def power(samples: npt.NDArray[np.generic]) -> float:
    """Mean square, full scale = 1."""
    if len(samples) == 0:
        return 0.0
    scaled = samples.astype(np.float64) / FULL_SCALE
    return float(np.mean(scaled * scaled))


def dbfs(samples: npt.NDArray[np.generic]) -> float:
    value = power(samples)
    return 10 * math.log10(value) if value > 1e-12 else SILENCE_DBFS


def to_int16(samples: npt.NDArray[np.generic]) -> Samples:
    clipped: Samples = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return clipped
