"""The audio bench reads latency from chirps: its detector finds each one
to the sample, in noise, and tells the two directions' chirps apart."""

from __future__ import annotations

import numpy as np

from bench.audio_probe import DOOR_CHIRP, RATE, VIEWER_CHIRP, latencies, onsets


def test_chirps_are_found_to_the_sample_in_noise() -> None:
    rng = np.random.default_rng(3)
    signal = rng.normal(0, 300, 5 * RATE)
    starts = [12_345, RATE + 777, 3 * RATE + 5]
    for start in starts:
        signal[start : start + len(DOOR_CHIRP)] += DOOR_CHIRP * 0.1  # 20 dB down
    # The other direction's chirp, louder, must not be taken for this one.
    signal[2 * RATE : 2 * RATE + len(VIEWER_CHIRP)] += VIEWER_CHIRP
    found = onsets(np.clip(signal, -32768, 32767).astype(np.int16), DOOR_CHIRP)
    assert len(found) == len(starts)
    assert all(abs(f - s) <= 2 for f, s in zip(found, starts, strict=True))


def test_each_sent_chirp_is_paired_with_the_first_heard_after_it() -> None:
    pairs = latencies([1.0, 2.0, 3.0], [1.1, 2.12, 5.0])
    assert [(sent, round(lat, 3)) for sent, lat in pairs] == [(1.0, 0.1), (2.0, 0.12), (3.0, 2.0)]
