"""ALSA PCM devices through alsa-lib itself (ctypes), mono 16-bit.

Why not PyAV's ``alsa`` output: FFmpeg sizes the device buffer at up to
131072 frames (2.7 s at 48 kHz) with no option to change it, and PyAV does
not expose how much of it is queued (``av_get_output_timestamp``). A player
that writes as fast as the device takes it then runs seconds behind, and one
paced by the system clock cannot see the card's clock drift (measured
through the sound server: 357 ms more than intended from the first write).
Here the buffer is asked for explicitly (``snd_pcm_set_params`` with a
latency of a few tens of milliseconds), so what is queued is bounded by the
device, and ``snd_pcm_delay`` says exactly when a written sample will be
heard, which is what the echo canceller needs.

alsa-lib is the system's (``libasound.so.2``, Debian ``libasound2``); without
it, the copy bundled in PyAV's wheel (which needs ``ALSA_CONFIG_PATH``, see
the field notes). Both read the same names and configuration. Every wait is
bounded (:data:`WAIT_MS`): a device that stops delivering is a failure, not
a hung thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import glob
import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
logger = logging.getLogger(__name__)

STREAM_PLAYBACK = 0
STREAM_CAPTURE = 1
FORMAT_S16_LE = 2
ACCESS_RW_INTERLEAVED = 3
WAIT_MS = 1000
"""A device that has had nothing to give or take for this long has failed."""
FIRST_WAIT_MS = 5000
"""Until twice the buffer has gone through since the open or the last xrun,
waits may take longer: a sound server starts its stream (PulseAudio's idle
null sink took up to 2 s)."""
_RECOVERABLE = (errno.EPIPE, errno.ESTRPIPE, errno.EINTR)


class AlsaError(Exception):
    """The device cannot be opened or has failed (unplugged, gone, stalled)."""


class AlsaUnavailable(AlsaError):
    """No alsa-lib on this machine."""


def _library_candidates() -> list[str]:
    found = ctypes.util.find_library("asound")
    candidates = [found] if found else []
    try:
        import av

        bundled = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
        candidates += sorted(glob.glob(os.path.join(bundled, "libasound*.so*")))
    except ImportError:  # pragma: no cover - PyAV is a dependency
        pass
    return candidates


@functools.cache
def library() -> Any:
    """alsa-lib, loaded once, with the prototypes used here declared."""
    for candidate in _library_candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        _declare(lib)
        _quiet(lib)
        return lib
    raise AlsaUnavailable("alsa-lib (libasound.so.2, Debian libasound2) is not installed")


def _declare(lib: Any) -> None:
    pcm = ctypes.c_void_p
    lib.snd_strerror.argtypes = [ctypes.c_int]
    lib.snd_strerror.restype = ctypes.c_char_p
    lib.snd_pcm_open.argtypes = [ctypes.POINTER(pcm), ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.snd_pcm_set_params.argtypes = [
        pcm, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_uint
    ]  # fmt: skip
    lib.snd_pcm_get_params.argtypes = [
        pcm, ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong)
    ]  # fmt: skip
    lib.snd_pcm_readi.argtypes = [pcm, ctypes.c_void_p, ctypes.c_ulong]
    lib.snd_pcm_readi.restype = ctypes.c_long
    lib.snd_pcm_writei.argtypes = [pcm, ctypes.c_void_p, ctypes.c_ulong]
    lib.snd_pcm_writei.restype = ctypes.c_long
    lib.snd_pcm_delay.argtypes = [pcm, ctypes.POINTER(ctypes.c_long)]
    lib.snd_pcm_wait.argtypes = [pcm, ctypes.c_int]
    lib.snd_pcm_recover.argtypes = [pcm, ctypes.c_int, ctypes.c_int]
    lib.snd_pcm_start.argtypes = [pcm]
    lib.snd_pcm_close.argtypes = [pcm]
    lib.snd_device_name_hint.argtypes = [
        ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))
    ]  # fmt: skip
    lib.snd_device_name_get_hint.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.snd_device_name_get_hint.restype = ctypes.c_void_p
    lib.snd_device_name_free_hint.argtypes = [ctypes.POINTER(ctypes.c_void_p)]


# alsa-lib prints its own errors on stderr ("ALSA lib pcm.c:8744:(...)"),
# beside the daemon's log lines; the reason reaches the log through our own
# errors instead. The handler is variadic in C: the fixed arguments are all
# it reads, which every ABI this runs on allows.
_ERROR_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)


def _alsa_said(
    file: bytes | None, line: int, function: bytes | None, error: int, _format: bytes | None
) -> None:
    where = (function or b"?").decode(errors="replace")
    logger.debug("alsa-lib: %s (%s:%d), error %d", where, (file or b"?").decode(), line, error)


_HANDLER = _ERROR_HANDLER(_alsa_said)
"""Held here for as long as alsa-lib may call it."""


def _quiet(lib: Any) -> None:
    setter = getattr(lib, "snd_lib_error_set_handler", None)
    if setter is not None:
        setter.argtypes = [_ERROR_HANDLER]
        setter(_HANDLER)


def _text(lib: Any, code: int) -> str:
    raw = lib.snd_strerror(code)
    return raw.decode(errors="replace") if raw else f"error {code}"


class Pcm:
    """One open PCM, mono S16 at ``rate``; used from a single thread."""

    def __init__(self, name: str, capture: bool, rate: int, latency: float) -> None:
        self.name = name
        self.capture = capture
        self.rate = rate
        self._transferred = 0
        self.overruns = 0
        """Capture: sound lost to a full buffer. Playback: the buffer ran dry."""
        lib = library()
        self._lib = lib
        handle = ctypes.c_void_p()
        stream = STREAM_CAPTURE if capture else STREAM_PLAYBACK
        code = lib.snd_pcm_open(ctypes.byref(handle), name.encode(), stream, 0)
        if code < 0:
            raise AlsaError(f"cannot open {name}: {_text(lib, code)}")
        self._handle: ctypes.c_void_p | None = handle
        code = lib.snd_pcm_set_params(
            handle, FORMAT_S16_LE, ACCESS_RW_INTERLEAVED, 1, rate, 1, int(latency * 1e6)
        )
        if code < 0:
            self.close()
            verb = "capture" if capture else "play"
            raise AlsaError(f"{name} cannot {verb} mono 16-bit at {rate} Hz: {_text(lib, code)}")
        buffer_size, period_size = ctypes.c_ulong(), ctypes.c_ulong()
        lib.snd_pcm_get_params(handle, ctypes.byref(buffer_size), ctypes.byref(period_size))
        self.buffer_frames = int(buffer_size.value)
        self.period_frames = int(period_size.value)
        if capture:
            self._check(lib.snd_pcm_start(handle), "start")

    @property
    def buffer_seconds(self) -> float:
        return self.buffer_frames / self.rate

    def read(self, frames: int) -> Samples:
        """Exactly ``frames`` samples; an overrun (sound lost because nobody
        read in time) is counted and reading goes on."""
        out = np.empty(frames, dtype=np.int16)
        done = 0
        while done < frames:
            self._wait()
            pointer = out.ctypes.data + 2 * done
            got = int(self._lib.snd_pcm_readi(self._live(), pointer, frames - done))
            if got < 0:
                self._recover(got)
                continue
            done += got
            self._transferred += got
        return out

    def write(self, samples: Samples) -> None:
        """Blocks while the device buffer is full, which paces the caller by
        the sound card's clock."""
        data = np.ascontiguousarray(samples, dtype=np.int16)
        done = 0
        while done < len(data):
            self._wait()
            pointer = data.ctypes.data + 2 * done
            put = int(self._lib.snd_pcm_writei(self._live(), pointer, len(data) - done))
            if put < 0:
                self._recover(put)
                continue
            done += put
            self._transferred += put

    def delay(self) -> int:
        """Frames between the application and the speaker (playback: written
        and not heard yet) or the microphone (capture: heard and not read)."""
        frames = ctypes.c_long()
        code = self._lib.snd_pcm_delay(self._live(), ctypes.byref(frames))
        return max(0, int(frames.value)) if code >= 0 else 0

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.snd_pcm_close(handle)

    def _live(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise AlsaError(f"{self.name} is closed")
        return self._handle

    def _wait(self) -> None:
        settled = self._transferred > 2 * self.buffer_frames
        wait_ms = WAIT_MS if settled else FIRST_WAIT_MS
        code = int(self._lib.snd_pcm_wait(self._live(), wait_ms))
        if code == 0:
            raise AlsaError(f"{self.name} stalled: nothing for {wait_ms} ms")
        if code < 0:
            self._recover(code)

    def _recover(self, code: int) -> None:
        if -code not in _RECOVERABLE:
            raise AlsaError(f"{self.name} failed: {_text(self._lib, code)}")
        self.overruns += 1
        # A sound server restarts its stream after an xrun as slowly as at first.
        self._transferred = 0
        self._check(self._lib.snd_pcm_recover(self._live(), code, 1), "recover")
        if self.capture:
            self._check(self._lib.snd_pcm_start(self._live()), "start")

    def _check(self, code: int, what: str) -> None:
        if code < 0 and not (what == "start" and -code == errno.EBADFD):
            raise AlsaError(f"{self.name}: {what} failed: {_text(self._lib, code)}")


def pcm_names() -> list[tuple[str, str, str]]:
    """``(name, description, direction)`` of every PCM the ALSA configuration
    lists (``aplay -L``); direction is ``Input``, ``Output`` or ``both``."""
    lib = library()
    hints = ctypes.POINTER(ctypes.c_void_p)()
    if lib.snd_device_name_hint(-1, b"pcm", ctypes.byref(hints)) < 0:
        return []
    found: list[tuple[str, str, str]] = []
    try:
        index = 0
        while hints[index]:
            fields = [_hint(lib, hints[index], key) for key in (b"NAME", b"DESC", b"IOID")]
            name, description, direction = fields
            if name:
                found.append((name, " ".join(description.split()), direction or "both"))
            index += 1
    finally:
        lib.snd_device_name_free_hint(hints)
    return found


def _hint(lib: Any, hint: int, key: bytes) -> str:
    pointer = lib.snd_device_name_get_hint(hint, key)
    if not pointer:
        return ""
    text = ctypes.string_at(pointer).decode(errors="replace")
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(pointer)
    return text
