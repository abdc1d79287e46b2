"""The playout buffer on its own, with simulated clocks: whatever the
talker's clock does, the depth stays bounded and nothing repeats."""

from __future__ import annotations

import numpy as np
import pytest

from intercom_fsm.adapters.audio.blocks import BLOCK, RATE
from intercom_fsm.adapters.audio.playout import Mixer, PlayoutBuffer

TARGET = 40 * RATE // 1000
MAXIMUM = 100 * RATE // 1000
FRAME = 960


def run(
    speed: float, seconds: float, jitter: float = 0.0, seed: int = 0
) -> tuple[PlayoutBuffer, list[int], int]:
    """A talker sending 20 ms frames ``speed`` times as fast as the speaker
    plays, each late by up to ``jitter`` seconds; returns the buffer, its
    depth after each pull, and the silent pulls."""
    rng = np.random.default_rng(seed)
    buffer = PlayoutBuffer(TARGET, MAXIMUM)
    frame = np.full(FRAME, 1000, dtype=np.int16)
    sent = 0
    next_push = 0.0
    depths: list[int] = []
    silent = 0
    pulls = round(seconds * 100)
    for index in range(pulls):
        now = index * 0.01
        while next_push <= now:
            buffer.push(frame, now)
            sent += 1
            next_push = sent * 0.02 / speed + (rng.uniform(0, jitter) if jitter else 0.0)
        block = buffer.pull()
        if block is None or not block.any():
            silent += 1
        depths.append(buffer.depth)
    return buffer, depths, silent


@pytest.mark.parametrize("speed", [1.01, 0.99, 1.015, 0.985])
def test_drift_is_corrected_and_the_depth_stays_bounded(speed: float) -> None:
    buffer, depths, _silent = run(speed, seconds=120)
    settled = depths[500:]
    assert max(settled) <= MAXIMUM
    assert abs(np.mean(settled) - TARGET) < 20 * RATE / 1000
    assert buffer.drift_corrections > 100
    assert buffer.underruns <= 1
    # Without correction the talker would be 1.2 s ahead or behind by now.
    assert buffer.dropped_samples < RATE // 10


@pytest.mark.parametrize("speed", [1.05, 0.95])
def test_beyond_what_stretching_corrects_the_depth_is_still_bounded(speed: float) -> None:
    _buffer, depths, _silent = run(speed, seconds=60)
    assert max(depths) <= MAXIMUM


def test_network_jitter_is_absorbed_without_underruns() -> None:
    buffer, depths, silent = run(1.0, seconds=60, jitter=0.008)
    assert buffer.underruns == 0
    assert silent <= TARGET // BLOCK + 1  # only while priming
    assert max(depths) <= MAXIMUM


def test_a_burst_after_a_stall_is_dropped_back_to_the_target() -> None:
    buffer = PlayoutBuffer(TARGET, MAXIMUM)
    buffer.push(np.ones(MAXIMUM + 3 * FRAME, dtype=np.int16))
    assert buffer.depth == TARGET
    assert buffer.drift_corrections == 1


def test_an_underrun_fades_out_then_plays_silence_and_never_repeats() -> None:
    buffer = PlayoutBuffer(TARGET, MAXIMUM)
    ramp = np.arange(1, TARGET + 101, dtype=np.int16)
    buffer.push(ramp)
    played = []
    while (block := buffer.pull()) is not None:
        played.append(block)
        if not block.any():
            break
    assert buffer.underruns == 1
    tail = played[-1]
    assert tail[0] > tail[len(ramp) % BLOCK - 1] >= 0  # faded, not cut
    assert not tail[len(ramp) % BLOCK :].any()
    assert buffer.pull() is None  # waits for the target again: silence
    values = np.concatenate(played)
    nonzero = values[values > 0]
    assert (np.diff(nonzero.astype(int)[: len(nonzero) - BLOCK]) > 0).all()


def test_the_mixer_sums_talkers_and_counts_them() -> None:
    mixer = Mixer(TARGET, MAXIMUM)
    first, second = mixer.add(), mixer.add()
    first.push(np.full(TARGET, 100, dtype=np.int16))
    second.push(np.full(TARGET, 30000, dtype=np.int16))
    block, heard = mixer.mix()
    assert heard
    assert int(block[0]) == 30100
    assert mixer.snapshot()[4] == 2
    mixer.remove(first)
    assert mixer.snapshot()[4] == 1
