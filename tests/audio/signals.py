"""Sounds the audio tests play, and what they measure in what comes back."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

RATE = 48_000
Samples = npt.NDArray[np.int16]


def tone(hz: float, seconds: float, dbfs: float = -20.0, rate: int = RATE) -> Samples:
    """A sine whose RMS level is ``dbfs``."""
    amplitude = 32768 * math.sqrt(2) * 10 ** (dbfs / 20)
    t = np.arange(round(seconds * rate)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def voice(seconds: float, dbfs: float = -20.0, pitch: float = 150.0, seed: int = 0) -> Samples:
    """Speech-like sound: a gliding voiced pitch with harmonics, syllables
    at 3 Hz. An echo canceller treats it as it treats speech (a stationary
    tone is the hardest case for AEC3, and no one talks like that)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = pitch * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    raw = wave * syllables
    rms = float(np.sqrt(np.mean(raw * raw)))
    scale = 32768 * 10 ** (dbfs / 20) / rms
    return np.clip(np.rint(raw * scale), -32768, 32767).astype(np.int16)


def level_dbfs(samples: npt.NDArray[np.generic]) -> float:
    x = samples.astype(np.float64) / 32768
    value = float(np.mean(x * x)) if len(x) else 0.0
    return 10 * math.log10(value) if value > 1e-12 else -120.0


def typical_level_dbfs(samples: npt.NDArray[np.generic], window: float = 0.5) -> float:
    """The median level of ``window``-second stretches: the echo a listener
    hears most of the time. An echo canceller re-adapts for a moment when its
    timing is disturbed (a thread of this 2-core machine stalled under load
    shifts the reference by a few ms), which lets through a few hundred ms
    of echo that the whole stretch's mean would be made of."""
    size = round(window * RATE)
    levels = [level_dbfs(samples[i : i + size]) for i in range(0, len(samples) - size + 1, size)]
    return float(np.median(levels)) if levels else level_dbfs(samples)


def band_level_dbfs(samples: npt.NDArray[np.generic], hz: float, width: float = 20.0) -> float:
    """The level of what lies within ``width`` Hz of ``hz`` (Hann window)."""
    x = samples.astype(np.float64) / 32768
    if len(x) == 0:
        return -120.0
    window = np.hanning(len(x))
    spectrum = np.fft.rfft(x * window)
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    band = np.abs(spectrum[(freqs > hz - width) & (freqs < hz + width)]) ** 2
    # Parseval with the window's power: a full-band sine reads as its RMS level.
    value = 2 * float(band.sum()) / (len(x) * float(np.sum(window * window)))
    return 10 * math.log10(value) if value > 1e-12 else -120.0


def dominant_hz(samples: npt.NDArray[np.generic], rate: int = RATE) -> float:
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    spectrum[freqs < 50] = 0
    return float(freqs[int(np.argmax(spectrum))])


def block_levels(samples: npt.NDArray[np.generic], block: int = 480) -> list[float]:
    return [level_dbfs(samples[i : i + block]) for i in range(0, len(samples) - block + 1, block)]


def longest_gap_ms(samples: npt.NDArray[np.generic], floor_dbfs: float, block: int = 480) -> float:
    """The longest run of 10 ms blocks quieter than ``floor_dbfs``."""
    return max((length for _, length in quiet_runs(samples, floor_dbfs, block)), default=0.0)


def quiet_runs(
    samples: npt.NDArray[np.generic], floor_dbfs: float, block: int = 480
) -> list[tuple[float, float]]:
    """Every run of 10 ms blocks quieter than ``floor_dbfs``: (start s, length ms)."""
    runs: list[tuple[float, float]] = []
    start: int | None = None
    levels = block_levels(samples, block)
    for index, level in enumerate([*levels, 0.0]):  # a loud end closes the last run
        if level < floor_dbfs and start is None:
            start = index
        elif level >= floor_dbfs and start is not None:
            runs.append((start * block / RATE, (index - start) * block * 1000 / RATE))
            start = None
    return runs
