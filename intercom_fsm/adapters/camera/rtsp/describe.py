"""The camera's H.264 video in its ``DESCRIBE`` answer (an SDP, RFC 4566),
sans I/O.

The first video section is the camera's picture, as FFmpeg takes it. It is
read here when it is H.264 in packetization mode 0 or 1 (RFC 6184): its
payload type, its control URL (RFC 2326 appendix C.1.1: absolute, or
relative to ``Content-Base``, ``Content-Location`` or the request's URL, joined
with a slash as cameras expect even after a query string) and the parameter
sets it declares (``sprop-parameter-sets``). Anything else is
:class:`NotReadHere`: FFmpeg reads it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import attrs

from intercom_fsm.adapters.camera.h264 import NAL_PPS, NAL_SPS, ParameterSets, nal_type

H264_CLOCK_RATE = 90_000


class NotReadHere(Exception):
    """The camera's video is not one this package reads; the message says why.

    The camera's connection is left open until :meth:`release`: a camera that
    shares one stream among its clients (GStreamer's server, many NVRs) may
    tear it down as its last client leaves and refuse the next one meanwhile,
    so whoever reads it instead opens first and releases this one after."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self._release: Callable[[], None] | None = None

    def hold(self, release: Callable[[], None]) -> None:
        self._release = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


@attrs.frozen
class VideoTrack:
    control_url: str = attrs.field(repr=False)
    """Where ``SETUP`` goes (may carry the camera's query string)."""
    session_url: str = attrs.field(repr=False)
    """Where ``PLAY`` and ``TEARDOWN`` go: the session's own control URL."""
    payload_type: int
    packetization_mode: int
    parameter_sets: ParameterSets | None
    """Declared in the SDP; None when the camera sends them only in band."""


def base_url(request_url: str, content_base: str | None, content_location: str | None) -> str:
    return (content_base or content_location or request_url).strip()


def video_track(sdp: str, base: str) -> VideoTrack:
    """The first video section, if it is H.264 this package reads; raises
    :class:`NotReadHere` otherwise."""
    sections = _media_sections(sdp)
    session_control = next(
        (
            line[len("a=control:") :].strip()
            for line in _session_lines(sdp)
            if line.startswith("a=control:")
        ),
        None,
    )
    video = next((lines for kind, lines in sections if kind == "video"), None)
    if video is None:
        raise NotReadHere("the camera's SDP has no video")
    media = video[0].split()
    formats = media[3:] if len(media) > 3 else []
    rtpmaps: dict[str, str] = {}
    fmtps: dict[str, str] = {}
    control: str | None = None
    for line in video[1:]:
        if line.startswith("a=rtpmap:"):
            number, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            rtpmaps[number.strip()] = encoding.strip()
        elif line.startswith("a=fmtp:"):
            number, _, text = line[len("a=fmtp:") :].partition(" ")
            fmtps[number.strip()] = text.strip()
        elif line.startswith("a=control:"):
            control = line[len("a=control:") :].strip()
    chosen = next((f for f in formats if rtpmaps.get(f, "").upper().startswith("H264/")), None)
    if chosen is None:
        names = ", ".join(rtpmaps.get(f, f) for f in formats) or "nothing"
        raise NotReadHere(f"the camera's video is not H.264 ({names})")
    if not chosen.isdigit():
        raise NotReadHere(f"the camera's video has a payload type that is no number: {chosen!r}")
    clock = rtpmaps[chosen].split("/")[1] if "/" in rtpmaps[chosen] else ""
    if clock.strip() != str(H264_CLOCK_RATE):
        raise NotReadHere(f"the camera's H.264 has a clock rate of {clock or 'nothing'}")
    parameters = _fmtp(fmtps.get(chosen, ""))
    mode_text = parameters.get("packetization-mode", "0")
    if mode_text not in ("0", "1"):
        raise NotReadHere(f"the camera's H.264 is in packetization mode {mode_text}")
    return VideoTrack(
        control_url=_resolve(control, base),
        session_url=_resolve(session_control, base),
        payload_type=int(chosen),
        packetization_mode=int(mode_text),
        parameter_sets=_parameter_sets(parameters.get("sprop-parameter-sets")),
    )


def _media_sections(sdp: str) -> list[tuple[str, list[str]]]:
    sections: list[tuple[str, list[str]]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append((line[2:].split(" ", 1)[0].lower(), [line]))
        elif sections and line:
            sections[-1][1].append(line)
    return sections


def _session_lines(sdp: str) -> list[str]:
    lines: list[str] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            break
        lines.append(line)
    return lines


def _fmtp(text: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.strip().partition("=")
        if equals:
            parameters[name.strip().lower()] = value.strip()
    return parameters


def _resolve(control: str | None, base: str) -> str:
    if not control or control == "*":
        return base
    if "://" in control:
        return control
    return base + control if base.endswith("/") else f"{base}/{control}"


def _parameter_sets(sprop: str | None) -> ParameterSets | None:
    if not sprop:
        return None
    units: list[bytes] = []
    for part in sprop.split(","):
        try:
            unit = base64.b64decode(part.strip() + "=" * (-len(part.strip()) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
        if unit:
            units.append(unit)
    sps = next((u for u in units if nal_type(u) == NAL_SPS and len(u) >= 4), None)
    pps = tuple(u for u in units if nal_type(u) == NAL_PPS)
    return ParameterSets(sps, pps) if sps is not None and pps else None
