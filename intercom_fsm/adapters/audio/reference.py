"""What the speaker played, and when it was heard: the echo canceller's
reference.

The speaker thread records every block it writes with the moment ALSA says
its first sample reaches the speaker (write time plus ``snd_pcm_delay``).
The capture thread asks, for each microphone block, for the played sound
heard at the moment that block's first sample was captured: the echo in it
is that sound, later by the room's own (short) delay, which the canceller
finds itself. Both sides then run sample-continuous: a :class:`Cursor`
follows the played samples one block after the other and only jumps back
into line when the timestamps, averaged over about a second, say it is more
than :data:`RESYNC` off (a clock drifting), or at once when a single one is
more than :data:`JUMP` off (a device reopened, an underrun): a canceller sees
every jump as a change of the room, and single timestamps jitter by several
milliseconds (measured through PulseAudio).
"""

from __future__ import annotations

import threading

import numpy as np

from intercom_fsm.adapters.audio.blocks import BLOCK, RATE, Samples

HISTORY = 2 * RATE
"""Samples of played sound kept (2 s: more than any echo path)."""
RESYNC = BLOCK // 2
"""Half a block (5 ms) of lasting disagreement before the cursor realigns."""
JUMP = 5 * BLOCK
"""50 ms off in one timestamp: the timeline itself changed."""
AVERAGING = 0.01
"""Weight of each block's timestamp in the averaged disagreement (about 1 s)."""


class PlayedSound:
    """Written by the speaker thread, read by the capture thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ring = np.zeros(HISTORY, dtype=np.int16)
        self._written = 0
        self._anchor: tuple[int, float] | None = None
        self._generation = 0

    def played(self, block: Samples, heard_at: float) -> None:
        """``block`` was written; its first sample is heard at ``heard_at``
        (``time.monotonic()``)."""
        with self._lock:
            start = self._written % HISTORY
            end = start + len(block)
            if end <= HISTORY:
                self._ring[start:end] = block
            else:
                split = HISTORY - start
                self._ring[start:] = block[:split]
                self._ring[: end - HISTORY] = block[split:]
            self._anchor = (self._written, heard_at)
            self._written += len(block)

    def stopped(self) -> None:
        """The speaker closed or failed: nothing is being played."""
        with self._lock:
            self._anchor = None
            self._generation += 1

    def index_at(self, moment: float) -> int | None:
        """The index of the played sample heard at ``moment``; None when
        nothing is playing."""
        with self._lock:
            if self._anchor is None:
                return None
            index, heard_at = self._anchor
            return index + round((moment - heard_at) * RATE)

    def samples(self, start: int, count: int = BLOCK) -> Samples:
        """Played samples ``start`` .. ``start + count``; silence for what was
        not played yet or is older than the history."""
        out = np.zeros(count, dtype=np.int16)
        with self._lock:
            low = max(start, self._written - HISTORY, 0)
            high = min(start + count, self._written)
            for index in range(low, high, BLOCK):
                stop = min(high, index + BLOCK)
                ring_start = index % HISTORY
                length = stop - index
                first = min(length, HISTORY - ring_start)
                out[index - start : index - start + first] = self._ring[
                    ring_start : ring_start + first
                ]
                if first < length:
                    out[index - start + first : stop - start] = self._ring[: length - first]
        return out


class Cursor:
    """The capture thread's position in the played sound."""

    def __init__(self, played: PlayedSound) -> None:
        self._played = played
        self._next: int | None = None
        self._disagreement = 0.0
        self.resyncs = 0

    def reference(self, captured_at: float) -> Samples:
        """The played block heard when the microphone block starting at
        ``captured_at`` was captured (silence when nothing plays)."""
        target = self._played.index_at(captured_at)
        if target is None:
            self._next = None
            return np.zeros(BLOCK, dtype=np.int16)
        if self._next is None:
            self._next = target
            self._disagreement = 0.0
        else:
            error = target - self._next
            self._disagreement += AVERAGING * (error - self._disagreement)
            if abs(error) > JUMP or abs(self._disagreement) > RESYNC:
                self.resyncs += 1
                self._next = target if abs(error) > JUMP else self._next + round(self._disagreement)
                self._disagreement = 0.0
        block = self._played.samples(self._next)
        self._next += BLOCK
        return block
