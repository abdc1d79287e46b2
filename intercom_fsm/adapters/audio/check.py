"""``intercom-fsm check-audio``: play a short chime on the speaker and say
what the microphone heard.

The check opens both devices as the daemon does, listens to the room for a
moment, then plays the chime twice: once with the microphone unprocessed
(what it hears of the speaker: how the panel is wired and how loud the
echo is), once with ``AUDIO_ECHO`` as configured (with ``cancel``, how much
of the chime the canceller removed; the first second lets it converge).
"""

from __future__ import annotations

import asyncio
import threading
import time

import attrs
import numpy as np

from intercom_fsm.adapters.audio.blocks import RATE, Samples, dbfs
from intercom_fsm.adapters.audio.settings import AudioSettings, EchoMode

CHIME_PITCHES = (220.0, 175.0)
"""A ding-dong sung rather than struck: two voiced syllables, rich in
harmonics. The canceller is built for voices; a bell's pure, steady partials
are its hardest case (measured: 2 to 12 dB removed against 26 to 34 dB on a
voice), and what it has to remove at a door is the viewer's voice."""
SYLLABLE = 0.3
PAUSE = 0.15
CHIME_SECONDS = 3.0
CHIME_DBFS = -18.0
HEARD_MARGIN_DB = 10.0
"""The chime counts as heard this far above the room's background."""
OPEN_TIMEOUT = 10.0


def chime(seconds: float = CHIME_SECONDS, dbfs_level: float = CHIME_DBFS) -> Samples:
    """The ding-dong, repeated for ``seconds``, at ``dbfs_level`` RMS."""
    t = np.arange(round(SYLLABLE * RATE)) / RATE
    parts = []
    for pitch in CHIME_PITCHES:
        glide = pitch * (1 + 0.04 * np.sin(2 * np.pi * 2.5 * t))
        phase = 2 * np.pi * np.cumsum(glide) / RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 24))
        parts.append(voiced * np.sin(np.pi * t / SYLLABLE) ** 2)
    parts.append(np.zeros(round(PAUSE * RATE)))
    wave = np.resize(np.concatenate(parts), round(seconds * RATE))
    rms = float(np.sqrt(np.mean(wave * wave)))
    scaled = wave * (32768 * 10 ** (dbfs_level / 20) / rms)
    return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)


@attrs.frozen
class CheckReport:
    microphone: str
    speaker: str
    problems: tuple[str, ...] = ()
    background_dbfs: float | None = None
    played_dbfs: float | None = None
    heard_dbfs: float | None = None
    processed_dbfs: float | None = None
    echo_mode: EchoMode = EchoMode.CANCEL

    @property
    def heard(self) -> bool:
        return (
            self.heard_dbfs is not None
            and self.background_dbfs is not None
            and self.heard_dbfs > self.background_dbfs + HEARD_MARGIN_DB
        )

    @property
    def removed_db(self) -> float | None:
        if self.heard_dbfs is None or self.processed_dbfs is None:
            return None
        return self.heard_dbfs - self.processed_dbfs

    def lines(self) -> list[str]:
        out = [f"microphone: {self.microphone}", f"speaker:    {self.speaker}"]
        out += [f"problem: {problem}" for problem in self.problems]
        if self.problems:
            return out
        out.append(f"room, before the chime: {self.background_dbfs:.0f} dBFS")
        out.append(f"chime played at {self.played_dbfs:.0f} dBFS for {CHIME_SECONDS:g} s")
        if not self.heard:
            out.append(
                f"the microphone did not hear it ({self.heard_dbfs:.0f} dBFS): fine for a "
                "headset; on a door panel check that the speaker and microphone are wired"
            )
            return out
        out.append(f"the microphone heard it at {self.heard_dbfs:.0f} dBFS (the echo)")
        if self.echo_mode is EchoMode.CANCEL:
            out.append(
                f"with AUDIO_ECHO=cancel: {self.processed_dbfs:.0f} dBFS, "
                f"{self.removed_db:.0f} dB of the chime removed"
            )
        elif self.echo_mode is EchoMode.HALF_DUPLEX:
            out.append(
                f"with AUDIO_ECHO=half-duplex the microphone is {self.removed_db:.0f} dB "
                "lower while the speaker plays"
            )
        return out


class _Listener:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: list[Samples] = []

    def __call__(self, block: Samples, _captured_at: float) -> None:
        with self._lock:
            self._blocks.append(block.copy())

    def take(self) -> Samples:
        with self._lock:
            blocks, self._blocks = self._blocks, []
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)


async def _heard_while_playing(settings: AudioSettings, sound: Samples) -> tuple[float, float]:
    """(room level before, microphone level over the last second of ``sound``)."""
    from intercom_fsm.adapters.audio.door import Audio

    problems: list[str] = []
    audio = Audio(settings, lambda event: problems.append(getattr(event, "reason", "")))
    listener = _Listener()
    await audio.open_microphone()
    await audio.open_speaker()
    try:
        audio.hold(True)
        deadline = time.monotonic() + OPEN_TIMEOUT
        while not (audio.stats.microphone_online and audio.stats.speaker_online):
            if any(problems) or time.monotonic() > deadline:
                raise RuntimeError("; ".join(p for p in problems if p) or "devices did not open")
            await asyncio.sleep(0.05)
        audio.add_tap(listener)
        await asyncio.sleep(1.0)
        background = dbfs(listener.take()[RATE // 2 :])
        audio.play_clip(sound)
        await asyncio.sleep(len(sound) / RATE - 1.0 + audio.speaker_delay)
        listener.take()
        await asyncio.sleep(1.0)
        return background, dbfs(listener.take())
    finally:
        await audio.close()


async def check_audio(settings: AudioSettings) -> CheckReport:
    microphone = settings.microphone.description
    speaker = settings.speaker.description
    sound = chime()
    played = dbfs(sound)
    missing = [
        f"no {kind} configured ({variable}=none)"
        for kind, variable, device in (
            ("microphone", "AUDIO_SOURCE", settings.microphone),
            ("speaker", "AUDIO_SINK", settings.speaker),
        )
        if device.description == "none"
    ]
    if missing:
        return CheckReport(microphone, speaker, tuple(missing))
    try:
        raw = attrs.evolve(settings, echo="off", noise_suppression=False, gain_control=False)
        background, heard = await _heard_while_playing(raw, sound)
        _, processed = await _heard_while_playing(settings, sound)
    except (RuntimeError, ValueError) as error:
        return CheckReport(microphone, speaker, (str(error),))
    return CheckReport(
        microphone,
        speaker,
        background_dbfs=background,
        played_dbfs=played,
        heard_dbfs=heard,
        processed_dbfs=processed,
        echo_mode=settings.echo_mode,
    )
