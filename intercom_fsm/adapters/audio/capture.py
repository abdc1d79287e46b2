"""The microphone thread: capture, echo handling, one Opus encoding for all.

Each 10 ms block read from the device goes through :class:`EchoControl`,
then to the taps (``intercom-fsm check-audio``, tests) and, while anyone
listens, into the one :class:`OpusStream` whose packets :class:`PacketHub`
hands to every listener. The ALSA capture buffer is asked for
``device_latency_ms / 2``: a thread that falls behind loses sound (counted
as an overrun), the latency never grows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from intercom_fsm.adapters.audio.blocks import BLOCK, Samples, dbfs
from intercom_fsm.adapters.audio.broadcast import OpusStream, PacketHub
from intercom_fsm.adapters.audio.devices import Microphone, open_microphone
from intercom_fsm.adapters.audio.echo import EchoControl
from intercom_fsm.adapters.audio.reference import Cursor, PlayedSound
from intercom_fsm.adapters.audio.settings import AudioSettings
from intercom_fsm.adapters.audio.worker import DeviceWorker
from intercom_fsm.events import Event, MicrophoneFailed, MicrophoneOpened, MicrophoneRecovered
from intercom_fsm.machine.backoff import BackoffPolicy

Tap = Callable[[Samples, float], None]
"""Called on the capture thread with each processed block and its capture moment."""


class MicrophoneWorker(DeviceWorker[Microphone]):
    kind = "microphone"
    opened_event = MicrophoneOpened
    failed_event = MicrophoneFailed
    recovered_event = MicrophoneRecovered

    def __init__(
        self,
        settings: AudioSettings,
        hub: PacketHub,
        played: PlayedSound,
        emit: Callable[[Event], None],
        random: Callable[[], float],
    ) -> None:
        source = settings.microphone
        super().__init__(
            source.description,
            emit,
            random,
            BackoffPolicy(settings.reopen_base, settings.reopen_cap),
        )
        self._settings = settings
        self._source = source
        self._hub = hub
        self._played = played
        self._opus = OpusStream(settings.bitrate)
        self._interrupt = threading.Event()
        self._taps_lock = threading.Lock()
        self._taps: list[Tap] = []
        self.blocks = 0
        self.packets_encoded = 0
        self.level_dbfs = -120.0
        self.erle_db: float | None = None
        self.attenuated_blocks = 0
        self.reference_resyncs = 0
        self.overruns = 0
        self._previous_overruns = 0

    def add_tap(self, tap: Tap) -> None:
        with self._taps_lock:
            self._taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        with self._taps_lock:
            if tap in self._taps:
                self._taps.remove(tap)

    def stop(self) -> None:
        self._interrupt.set()
        super().stop()

    def open_device(self) -> Microphone:
        return open_microphone(
            self._source, self._settings.device_latency_ms / 2000, self._interrupt
        )

    def close_device(self, device: Microphone) -> None:
        device.close()

    def serve(self, device: Microphone) -> None:
        cursor = Cursor(self._played)
        echo = EchoControl(self._settings, cursor)
        earlier_resyncs = self.reference_resyncs
        self._previous_overruns = 0
        while self.wanted():
            block, captured_at = device.read()
            processed = echo.process(block, captured_at)
            self.blocks += 1
            self.level_dbfs = dbfs(processed)
            self.erle_db = echo.erle.value
            self.attenuated_blocks = echo.attenuated_blocks
            self.reference_resyncs = earlier_resyncs + cursor.resyncs
            self.overruns += device.overruns - self._previous_overruns
            self._previous_overruns = device.overruns
            with self._taps_lock:
                taps = list(self._taps)
            for tap in taps:
                tap(processed, captured_at)
            if self._hub.listeners:
                packets = self._opus.encode(processed)
                self.packets_encoded += len(packets)
                self._hub.publish(packets)
            else:
                self._opus.skip(BLOCK)
