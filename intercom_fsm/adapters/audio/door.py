"""The audio adapter: the door's microphone and speaker, shared by every viewer.

The runtime carries out the machine's ``OpenMicrophone`` / ``CloseMicrophone``
/ ``OpenSpeaker`` / ``CloseSpeaker`` with the methods of the same names
(:class:`intercom_fsm.daemon.ports.AudioPort`); they return at once. The peer
adapter gives each listening viewer :meth:`Audio.track_for_listener` and hands
each talking viewer's received track to :meth:`Audio.add_talker`.

Like the camera, a device is held open while it is open and in use (a
listener, a talker, or warming up after the open so the first viewer does
not wait), released otherwise, and reopened with backoff after a failure.
Events (``MicrophoneOpened`` / ``Failed`` / ``Recovered`` and the Speaker
ones) reach ``on_event`` on the event loop that opened the device.
"""

from __future__ import annotations

import asyncio
import logging
import random as random_module
import time
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm.adapters.audio.blocks import RATE, Samples
from intercom_fsm.adapters.audio.broadcast import ListenerTrack, PacketHub
from intercom_fsm.adapters.audio.capture import MicrophoneWorker, Tap
from intercom_fsm.adapters.audio.playback import SpeakerWorker
from intercom_fsm.adapters.audio.playout import Mixer
from intercom_fsm.adapters.audio.reference import PlayedSound
from intercom_fsm.adapters.audio.settings import AudioSettings, AudioStats, NoDevice
from intercom_fsm.adapters.audio.talkers import Talker
from intercom_fsm.adapters.audio.worker import DeviceWorker
from intercom_fsm.events import Event

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 3.0


class Audio:
    def __init__(
        self,
        settings: AudioSettings,
        on_event: Callable[[Event], None],
        *,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        """Raises ``ValueError`` for a bad source, sink or echo mode."""
        self.settings = settings
        self._on_event = on_event
        self._random = random
        self._hub = PacketHub()
        self._played = PlayedSound()
        self._mixer = Mixer(
            round(settings.playout_target_ms * RATE / 1000),
            round(settings.playout_max_ms * RATE / 1000),
        )
        self._listeners: set[ListenerTrack] = set()
        self._talkers: set[Talker] = set()
        self._microphone: MicrophoneWorker | None = None
        self._speaker: SpeakerWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held = False
        self._past_mic: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._past_speaker: tuple[int, int] = (0, 0)

    # --- what the peers need -------------------------------------------------------

    @property
    def has_microphone(self) -> bool:
        return not isinstance(self.settings.microphone, NoDevice)

    @property
    def has_speaker(self) -> bool:
        return not isinstance(self.settings.speaker, NoDevice)

    def track_for_listener(self) -> MediaStreamTrack:
        """A new track for one listening viewer, fed by the shared encoding."""
        track = ListenerTrack(self._hub, self._listener_left)
        self._listeners.add(track)
        self._update_demand(speaker=False)
        return track

    def add_talker(self, track: MediaStreamTrack) -> None:
        """Play a viewer's received audio track through the speaker, mixed
        with the others, until the track ends."""
        talker = Talker(track, self._mixer.add(), self._talker_left, self._speaker_playing)
        self._talkers.add(talker)
        self._update_demand(microphone=False)

    # --- AudioPort ------------------------------------------------------------------

    async def open_microphone(self) -> None:
        if self._microphone is not None:
            return
        if not self.has_microphone:
            logger.info("no microphone configured (AUDIO_SOURCE=none): viewers get no sound")
            return
        self._bind()
        worker = MicrophoneWorker(
            self.settings,
            self._hub,
            self._played,
            lambda event: self._emit_from_thread(worker, event),
            self._random,
        )
        self._microphone = worker
        worker.set_demand(True)
        worker.start()

    async def close_microphone(self) -> None:
        worker, self._microphone = self._microphone, None
        if worker is None:
            return
        worker.stop()
        for track in list(self._listeners):
            track.stop()
        await _join(worker)
        self._past_mic = (
            self._past_mic[0] + worker.packets_encoded,
            self._past_mic[1] + worker.overruns,
            self._past_mic[2] + worker.failures,
            self._past_mic[3] + worker.reference_resyncs,
        )

    async def open_speaker(self) -> None:
        if self._speaker is not None:
            return
        if not self.has_speaker:
            logger.info("no speaker configured (AUDIO_SINK=none): viewers cannot talk")
            return
        self._bind()
        worker = SpeakerWorker(
            self.settings,
            self._mixer,
            self._played,
            lambda event: self._emit_from_thread(worker, event),
            self._random,
        )
        self._speaker = worker
        worker.set_demand(True)
        worker.start()

    async def close_speaker(self) -> None:
        """Release the speaker. Talking viewers' tracks are still read into
        their (bounded) playout buffers until their connections end: aiortc
        would otherwise queue their sound without bound."""
        worker, self._speaker = self._speaker, None
        if worker is None:
            return
        worker.stop()
        await _join(worker)
        self._past_speaker = (
            self._past_speaker[0] + worker.underruns,
            self._past_speaker[1] + worker.failures,
        )

    async def close(self) -> None:
        """Both devices, and the reading of every talker's track."""
        await self.close_microphone()
        await self.close_speaker()
        for talker in list(self._talkers):
            await talker.stop()

    # --- checks and tests ----------------------------------------------------------

    def hold(self, held: bool) -> None:
        """Keep both devices open even with nobody listening or talking."""
        self._held = held
        self._update_demand()

    def add_tap(self, tap: Tap) -> None:
        """``tap`` gets every processed microphone block, on the capture thread."""
        if self._microphone is not None:
            self._microphone.add_tap(tap)

    def remove_tap(self, tap: Tap) -> None:
        if self._microphone is not None:
            self._microphone.remove_tap(tap)

    def play_clip(self, samples: Samples) -> None:
        """Queue mono 48 kHz samples on the speaker, mixed with the viewers."""
        if self._speaker is not None:
            self._speaker.play_clip(samples)

    @property
    def speaker_delay(self) -> float:
        """Seconds from a written block to its sound, as ALSA last said."""
        return self._speaker.last_delay if self._speaker is not None else 0.0

    @property
    def stats(self) -> AudioStats:
        delivered, dropped = self._hub.counts()
        depth, underruns, corrections, received, talking = self._mixer.snapshot()
        mic, speaker = self._microphone, self._speaker
        return AudioStats(
            packets_sent=delivered,
            packets_encoded=self._past_mic[0] + (mic.packets_encoded if mic else 0),
            packets_received=received,
            packets_dropped=dropped,
            playout_depth_ms=depth * 1000 / RATE,
            underruns=underruns,
            drift_corrections=corrections,
            erle_db=mic.erle_db if mic else None,
            reference_resyncs=self._past_mic[3] + (mic.reference_resyncs if mic else 0),
            talking_viewers=talking,
            listening_viewers=len(self._listeners),
            microphone_online=bool(mic and mic.online),
            speaker_online=bool(speaker and speaker.online),
            capture_overruns=self._past_mic[1] + (mic.overruns if mic else 0),
            playback_underruns=self._past_speaker[0] + (speaker.underruns if speaker else 0),
            microphone_failures=self._past_mic[2] + (mic.failures if mic else 0),
            speaker_failures=self._past_speaker[1] + (speaker.failures if speaker else 0),
        )

    @property
    def microphone_level_dbfs(self) -> float:
        return self._microphone.level_dbfs if self._microphone is not None else -120.0

    @property
    def attenuated_blocks(self) -> int:
        return self._microphone.attenuated_blocks if self._microphone is not None else 0

    # --- internals ----------------------------------------------------------------

    def _bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._hub.bind(self._loop)

    def _speaker_playing(self) -> bool:
        return self._speaker is not None and self._speaker.serving

    def _listener_left(self, track: ListenerTrack) -> None:
        self._listeners.discard(track)
        self._update_demand(speaker=False)

    def _talker_left(self, talker: Talker) -> None:
        self._talkers.discard(talker)
        self._mixer.remove(talker.buffer)
        self._update_demand(microphone=False)

    def _update_demand(self, microphone: bool = True, speaker: bool = True) -> None:
        """A device is wanted while someone uses it (or it is held); after
        the warm-up of an open, the last user leaving releases it."""
        if microphone and self._microphone is not None:
            self._microphone.set_demand(bool(self._listeners) or self._held)
        if speaker and self._speaker is not None:
            self._speaker.set_demand(bool(self._talkers) or self._held)

    def _emit_from_thread(self, worker: DeviceWorker[Any], event: Event) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._deliver, worker, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            logger.debug("audio event after the event loop closed: %r", event)

    def _deliver(self, worker: DeviceWorker[Any], event: Event) -> None:
        # A closed device's last words would reach a machine that closed it.
        if worker is self._microphone or worker is self._speaker:
            self._on_event(event)


async def _join(worker: DeviceWorker[Any]) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT
    delay = 0.001
    while worker.is_alive():
        if time.monotonic() >= deadline:
            logger.warning("the %s thread did not stop within %gs", worker.kind, JOIN_TIMEOUT)
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)
