"""The microphone's processing: echo handling (``AUDIO_ECHO``), noise
suppression and gain control, one 10 ms block at a time on the capture thread.

* ``cancel``: WebRTC's audio processing module (AEC3, from ``pywebrtc-audio``)
  with what the speaker played as its far-end reference, aligned in time by
  :mod:`.reference`; its noise suppressor and gain control follow in the same
  pass when enabled.
* ``half-duplex``: while the played sound is above :data:`TALK_DBFS` (and
  :data:`HOLD` after), the microphone is attenuated by the configured amount,
  the gain gliding over :data:`GLIDE_BLOCKS` so the switch does not click.
* ``off``: only noise suppression and gain control, if enabled.

:class:`ErleMeter` measures the echo return loss enhancement while the
speaker plays: the microphone's power before processing over its power after.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from intercom_fsm.adapters.audio.blocks import BLOCK_SECONDS, Samples, dbfs, power, to_int16
from intercom_fsm.adapters.audio.reference import Cursor
from intercom_fsm.adapters.audio.settings import AudioSettings, EchoMode

logger = logging.getLogger(__name__)

TALK_DBFS = -50.0
"""Played sound above this is a viewer talking (for half-duplex and ERLE)."""
HOLD = 0.25
"""Seconds the microphone stays attenuated after the viewer stops."""
GLIDE_BLOCKS = 3
ERLE_WINDOW = 2.0
"""Seconds over which the ERLE figure is averaged."""


class ErleMeter:
    def __init__(self) -> None:
        self._before = 0.0
        self._after = 0.0
        self._weight = BLOCK_SECONDS / ERLE_WINDOW
        self.value: float | None = None

    def add(self, far: Samples, before: Samples, after: Samples) -> None:
        if dbfs(far) < TALK_DBFS:
            return
        keep = 1 - self._weight
        self._before = keep * self._before + self._weight * power(before)
        self._after = keep * self._after + self._weight * power(after)
        if self._before > 1e-12:
            self.value = 10 * math.log10(self._before / max(self._after, 1e-13))


def _processor(settings: AudioSettings, cancel: bool) -> Any | None:
    if not (cancel or settings.noise_suppression or settings.gain_control):
        return None
    try:
        from pywebrtc_audio import AudioProcessor
    except ImportError:
        logger.warning("pywebrtc-audio is not installed: no echo cancellation or noise suppression")
        return None
    from intercom_fsm.adapters.audio.blocks import RATE

    return AudioProcessor(
        sample_rate=RATE,
        num_channels=1,
        echo_cancellation=cancel,
        noise_suppression=settings.noise_suppression,
        high_pass_filter=True,
        auto_gain_control=settings.gain_control,
        ns_level=settings.noise_level,
    )


class EchoControl:
    """Not thread-safe: lives on the capture thread."""

    def __init__(self, settings: AudioSettings, cursor: Cursor) -> None:
        self.mode = settings.echo_mode
        self._cursor = cursor
        self._processor = _processor(settings, self.mode is EchoMode.CANCEL)
        if self.mode is EchoMode.CANCEL and self._processor is None:
            self.mode = EchoMode.HALF_DUPLEX
            logger.warning("AUDIO_ECHO=cancel needs pywebrtc-audio: using half-duplex")
        self._attenuation = 10 ** (-settings.half_duplex_attenuation_db / 20)
        self._gain = 1.0
        self._talk_until = -math.inf
        self.erle = ErleMeter()
        self.attenuated_blocks = 0

    def process(self, near: Samples, captured_at: float) -> Samples:
        far = self._cursor.reference(captured_at)
        if self.mode is EchoMode.CANCEL:
            assert self._processor is not None
            out: Samples = self._processor.process(near, far)
        else:
            out = self._processor.process(near) if self._processor is not None else near
            if self.mode is EchoMode.HALF_DUPLEX:
                out = self._half_duplex(out, far, captured_at)
        self.erle.add(far, near, out)
        return out

    def _half_duplex(self, block: Samples, far: Samples, now: float) -> Samples:
        if dbfs(far) >= TALK_DBFS:
            self._talk_until = now + HOLD
        wanted = self._attenuation if now < self._talk_until else 1.0
        if wanted == self._gain:
            if wanted < 1.0:
                self.attenuated_blocks += 1
                return to_int16(block * wanted)
            return block
        step = (wanted - self._gain) / GLIDE_BLOCKS
        start = self._gain
        self._gain = wanted if abs(wanted - self._gain) <= abs(step) else self._gain + step
        ramp = np.linspace(start, self._gain, len(block), endpoint=False)
        self.attenuated_blocks += 1
        return to_int16(block * ramp)
