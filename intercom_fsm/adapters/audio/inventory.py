"""``intercom-fsm devices``: the cameras, capture and playback devices this
machine can open, each tried for real.

Audio devices are the PCMs the ALSA configuration lists (``arecord -L`` /
``aplay -L``), the cards' plain ``plughw:`` names, and the configured
``AUDIO_SOURCE`` / ``AUDIO_SINK``; each is opened as the daemon would
(mono, 16-bit, 48 kHz) and closed at once. Cameras are ``/dev/video*``
opened with OpenCV.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

import attrs

from intercom_fsm.adapters.audio.alsa import AlsaError, Pcm, pcm_names
from intercom_fsm.adapters.audio.blocks import RATE

PROC_CARDS = "/proc/asound/cards"
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[(\S+)\s*\]:\s*(.*)$")


@attrs.frozen
class Device:
    name: str
    description: str
    opens: bool
    problem: str = ""


@attrs.frozen
class Inventory:
    cameras: tuple[Device, ...]
    microphones: tuple[Device, ...]
    speakers: tuple[Device, ...]

    def lines(self) -> list[str]:
        out: list[str] = []
        for title, devices, variable in (
            ("cameras", self.cameras, "VIDEO_SOURCE"),
            ("capture devices (microphones)", self.microphones, "AUDIO_SOURCE"),
            ("playback devices (speakers)", self.speakers, "AUDIO_SINK"),
        ):
            out.append(f"{title}, for {variable}:")
            if not devices:
                out.append("  (none found)")
            for device in devices:
                mark = "ok " if device.opens else "-- "
                detail = device.description if device.opens else device.problem
                out.append(f"  {mark}{device.name}" + (f"  ({detail})" if detail else ""))
        return out


def cards(path: str = PROC_CARDS) -> list[tuple[str, str]]:
    """``(plughw name, description)`` of each sound card the kernel has."""
    found = []
    try:
        with open(path, encoding="utf-8", errors="replace") as listing:
            for line in listing:
                match = _CARD_LINE.match(line)
                if match:
                    found.append((f"plughw:CARD={match.group(2)},DEV=0", match.group(3).strip()))
    except OSError:
        pass
    return found


def try_pcm(name: str, description: str, capture: bool) -> Device:
    try:
        pcm = Pcm(name, capture=capture, rate=RATE, latency=0.04)
    except AlsaError as error:
        return Device(name, description, False, str(error))
    pcm.close()
    return Device(name, description, True)


def audio_devices(capture: bool, configured: Iterable[str] = ()) -> list[Device]:
    try:
        hinted = pcm_names()
    except AlsaError as error:
        return [Device("(ALSA)", "", False, str(error))]
    wanted = "Input" if capture else "Output"
    names: dict[str, str] = {}
    for name in configured:
        names.setdefault(name, "configured")
    for name, description, direction in hinted:
        if direction in (wanted, "both") and name != "null":
            names.setdefault(name, description)
    for name, description in cards():
        names.setdefault(name, description)
    return [try_pcm(name, description, capture) for name, description in names.items()]


def cameras() -> list[Device]:
    found = []
    for path in sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p)):
        try:
            import cv2

            capture = cv2.VideoCapture(path, cv2.CAP_V4L2)
            opens = bool(capture.isOpened()) and bool(capture.read()[0])
            capture.release()
        except Exception as error:  # OpenCV raises several kinds for odd nodes
            found.append(Device(path, "", False, type(error).__name__))
            continue
        found.append(Device(path, "V4L2", opens, "" if opens else "cannot read a picture"))
    return found


def inventory(source: str | None = None, sink: str | None = None) -> Inventory:
    def alsa_only(value: str | None) -> list[str]:
        keep = value is not None and value.lower() != "none" and not value.startswith("tone")
        return [value] if keep and value is not None else []

    return Inventory(
        cameras=tuple(cameras()),
        microphones=tuple(audio_devices(True, alsa_only(source))),
        speakers=tuple(audio_devices(False, alsa_only(sink))),
    )


def environment_devices() -> tuple[str | None, str | None]:
    return os.environ.get("AUDIO_SOURCE"), os.environ.get("AUDIO_SINK")
