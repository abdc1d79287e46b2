"""The speaker thread: the mix of every talking viewer, to ALSA.

Each 10 ms block comes from :class:`Mixer` (silence when nobody talks, so
the device and the echo canceller's reference keep a steady clock), plus
any clip queued by :meth:`SpeakerWorker.play_clip` (the chime of
``intercom-fsm check-audio``). The write blocks while the device buffer
(``device_latency_ms``) is full, so the sound card's clock paces the thread
and nothing queues up behind it. What was written, and when ALSA says it is
heard, goes to :class:`PlayedSound` for the echo canceller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from intercom_fsm.adapters.audio.blocks import BLOCK, Samples
from intercom_fsm.adapters.audio.devices import Speaker, open_speaker
from intercom_fsm.adapters.audio.playout import Mixer
from intercom_fsm.adapters.audio.reference import PlayedSound
from intercom_fsm.adapters.audio.settings import AudioSettings
from intercom_fsm.adapters.audio.worker import DeviceWorker
from intercom_fsm.events import Event, SpeakerFailed, SpeakerOpened, SpeakerRecovered
from intercom_fsm.machine.backoff import BackoffPolicy


class SpeakerWorker(DeviceWorker[Speaker]):
    kind = "speaker"
    opened_event = SpeakerOpened
    failed_event = SpeakerFailed
    recovered_event = SpeakerRecovered

    def __init__(
        self,
        settings: AudioSettings,
        mixer: Mixer,
        played: PlayedSound,
        emit: Callable[[Event], None],
        random: Callable[[], float],
    ) -> None:
        sink = settings.speaker
        super().__init__(
            sink.description, emit, random, BackoffPolicy(settings.reopen_base, settings.reopen_cap)
        )
        self._settings = settings
        self._sink = sink
        self._mixer = mixer
        self._played = played
        self._clip_lock = threading.Lock()
        self._clip = np.zeros(0, dtype=np.int16)
        self.blocks = 0
        self.underruns = 0
        self.last_delay = 0.0
        """Seconds from a write to its sound being heard, last measured."""

    def play_clip(self, samples: Samples) -> None:
        with self._clip_lock:
            self._clip = np.concatenate((self._clip, samples.astype(np.int16)))

    @property
    def clip_pending(self) -> bool:
        with self._clip_lock:
            return len(self._clip) > 0

    def open_device(self) -> Speaker:
        return open_speaker(self._sink, self._settings.device_latency_ms / 1000)

    def close_device(self, device: Speaker) -> None:
        self._played.stopped()
        device.close()

    def serve(self, device: Speaker) -> None:
        previous = 0
        while self.wanted():
            block, _heard = self._mixer.mix()
            block = self._with_clip(block)
            heard_at = device.write(block)
            self.last_delay = max(0.0, heard_at - time.monotonic())
            self._played.played(block, heard_at)
            self.blocks += 1
            self.underruns += device.underruns - previous
            previous = device.underruns

    def _with_clip(self, block: Samples) -> Samples:
        with self._clip_lock:
            if not len(self._clip):
                return block
            part, self._clip = self._clip[:BLOCK], self._clip[BLOCK:]
        mixed = block.astype(np.int32)
        mixed[: len(part)] += part
        return np.clip(mixed, -32768, 32767).astype(np.int16)
