"""Which video codec a viewer gets, and an answer that says what it really is.

aiortc answers in the offer's codec order (``setCodecPreferences`` on an
answerer's transceiver comes too late to change it) and knows H.264 only as
Constrained Baseline, while H.264 cameras send High or Main. So the offer is
rewritten before aiortc reads it, and the answer after aiortc wrote it:

* the offer's video codecs are put in our order of preference, each followed
  by its retransmission codec: with ``VIDEO_CODEC=auto``, the camera's own
  H.264 (no decode, no encode) if the viewer accepts its profile, then H.264
  from the board's hardware encoder if it has one, then VP8, then H.264 from
  libx264; ``vp8`` and ``h264`` put that codec first;
* when the camera's H.264 goes to this viewer, the offer's payload that
  accepts the camera's profile is shown to aiortc as Constrained Baseline (so
  it negotiates it), and the answer then carries the camera's own
  ``profile-level-id`` (its profile and level) for that payload: the viewer
  is told what it will decode.

A viewer accepts the camera's profile when its offer has an H.264 payload with
``packetization-mode=1`` (aiortc's packetizer fragments) and the same profile
as the camera, in the sense of RFC 6184 and libwebrtc (``640c1f``, Constrained
High, is not High). The level is not compared: browsers decode higher levels
than they offer (their offers say 3.1), and a viewer that cannot gets the
picture late rather than not at all. Every other H.264 viewer gets the
transcoded Constrained Baseline stream.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

import attrs
from aiortc.rtcsessiondescription import RTCSessionDescription
from aiortc.sdp import H264Profile, parse_h264_profile_level_id

AIORTC_H264_PROFILE = "42e01f"
"""What aiortc negotiates: Constrained Baseline 3.1."""
_BASELINE = (H264Profile.PROFILE_BASELINE, H264Profile.PROFILE_CONSTRAINED_BASELINE)
_PROFILE = re.compile(r"profile-level-id=([0-9a-fA-F]{6})")

CAMERA_H264 = "camera-h264"
ENCODED_H264 = "h264"
VP8 = "vp8"


@attrs.frozen
class VideoSourceInfo:
    """What the camera can offer a viewer."""

    passthrough_profile: str | None = None
    """The camera's H.264 ``profile-level-id`` when its stream can be passed through."""
    hardware_h264: bool = False
    """H.264 comes from a hardware encoder, cheaper than VP8 in software."""


@runtime_checkable
class DescribesVideo(Protocol):
    """A track source that knows its camera's format (the camera adapter)."""

    @property
    def passthrough_profile(self) -> str | None: ...

    @property
    def h264_encoder_is_hardware(self) -> bool: ...

    async def wait_for_source_format(self, within: float = ...) -> object: ...


async def describe_source(source: object) -> VideoSourceInfo:
    if not isinstance(source, DescribesVideo):
        return VideoSourceInfo()
    await source.wait_for_source_format()
    return VideoSourceInfo(source.passthrough_profile, source.h264_encoder_is_hardware)


@attrs.frozen
class OfferedCodec:
    payload_type: str
    name: str
    """Upper case, as in ``rtpmap``: ``VP8``, ``H264``, ``RTX``."""
    parameters: dict[str, str] = attrs.field(eq=False)


@attrs.frozen
class VideoPlan:
    offer: str
    """The offer as aiortc must read it."""
    camera_payload: str | None = None
    """The payload type that carries the camera's own H.264, if this viewer gets it."""
    camera_profile: str | None = None

    def answer(self, answer: RTCSessionDescription) -> RTCSessionDescription:
        """aiortc's answer, telling the camera's profile where it is sent."""
        if self.camera_payload is None or self.camera_profile is None:
            return answer
        sdp = _rewrite_profile(answer.sdp, self.camera_payload, self.camera_profile)
        return RTCSessionDescription(sdp=sdp, type=answer.type)


def plan_video(offer: str, preference: str, source: VideoSourceInfo) -> VideoPlan:
    """Order ``offer``'s video codecs for ``preference`` (``auto``, ``vp8``,
    ``h264``) and what ``source`` has."""
    lines, newline = _lines(offer)
    section = _video_section(lines)
    if section is None:
        return VideoPlan(offer)
    start, end = section
    codecs = _codecs(lines[start:end])
    fields = lines[start].split()
    order = [pt for pt in fields[3:] if pt in codecs]
    kinds = {pt: _kind(codecs[pt], source) for pt in order}
    rank = _ranks(preference, source)
    primary = sorted(
        (pt for pt in order if codecs[pt].name != "RTX"),
        key=lambda pt: (rank.get(kinds[pt] or "", len(rank)), order.index(pt)),
    )
    ordered: list[str] = []
    for pt in primary:
        ordered.append(pt)
        ordered += [
            rtx
            for rtx in order
            if codecs[rtx].name == "RTX" and codecs[rtx].parameters.get("apt") == pt
        ]
    ordered += [pt for pt in fields[3:] if pt not in ordered]
    lines[start] = " ".join([*fields[:3], *ordered])
    lines[start:end] = _reorder_codec_lines(lines[start:end], ordered)
    camera_payload = primary[0] if primary and kinds[primary[0]] == CAMERA_H264 else None
    rewritten = newline.join(lines)
    if camera_payload is None:
        return VideoPlan(rewritten)
    rewritten = _rewrite_profile(rewritten, camera_payload, AIORTC_H264_PROFILE)
    return VideoPlan(rewritten, camera_payload, source.passthrough_profile)


def negotiated_profile_level_id(sdp: str) -> str | None:
    """The ``profile-level-id`` of the first codec of the first video section."""
    lines, _ = _lines(sdp)
    section = _video_section(lines)
    if section is None:
        return None
    start, end = section
    fields = lines[start].split()
    if len(fields) < 4:
        return None
    codec = _codecs(lines[start:end]).get(fields[3])
    found = codec.parameters.get("profile-level-id") if codec else None
    return found.lower() if found else None


def _kind(codec: OfferedCodec, source: VideoSourceInfo) -> str | None:
    if codec.name == "VP8":
        return VP8
    if codec.name != "H264" or codec.parameters.get("packetization-mode", "0") != "1":
        return None
    try:
        profile = _profile(codec.parameters.get("profile-level-id", AIORTC_H264_PROFILE))
    except ValueError:
        return None
    if source.passthrough_profile is not None and profile == _profile(source.passthrough_profile):
        return CAMERA_H264
    return ENCODED_H264 if profile in _BASELINE else None


def _profile(profile_level_id: str) -> H264Profile:
    return parse_h264_profile_level_id(profile_level_id)[0]


def _ranks(preference: str, source: VideoSourceInfo) -> dict[str, int]:
    if preference == VP8:
        order = (VP8, CAMERA_H264, ENCODED_H264)
    elif preference == ENCODED_H264 or source.hardware_h264:
        order = (CAMERA_H264, ENCODED_H264, VP8)
    else:
        order = (CAMERA_H264, VP8, ENCODED_H264)
    return {kind: index for index, kind in enumerate(order)}


def _lines(sdp: str) -> tuple[list[str], str]:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return sdp.split(newline), newline


def _video_section(lines: list[str]) -> tuple[int, int] | None:
    start = next((i for i, line in enumerate(lines) if line.startswith("m=video ")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    return start, end


def _codecs(section: list[str]) -> dict[str, OfferedCodec]:
    names: dict[str, str] = {}
    parameters: dict[str, dict[str, str]] = {}
    for line in section:
        if line.startswith("a=rtpmap:"):
            payload_type, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[payload_type] = rest.split("/", 1)[0].upper()
        elif line.startswith("a=fmtp:"):
            payload_type, _, rest = line[len("a=fmtp:") :].partition(" ")
            parameters[payload_type] = dict(
                (key.strip().lower(), value.strip())
                for key, _, value in (item.partition("=") for item in rest.split(";"))
                if key.strip()
            )
    return {pt: OfferedCodec(pt, name, parameters.get(pt, {})) for pt, name in names.items()}


def _reorder_codec_lines(section: list[str], ordered: list[str]) -> list[str]:
    """The section with each payload type's ``rtpmap``, ``fmtp`` and
    ``rtcp-fb`` lines in ``ordered``'s order: aiortc takes the codecs'
    order from the ``rtpmap`` lines, not from the ``m=`` line."""
    by_payload: dict[str, list[str]] = {pt: [] for pt in ordered}
    kept: list[str] = []
    first: int | None = None
    for line in section:
        payload_type = _payload_of(line)
        if payload_type in by_payload:
            first = len(kept) if first is None else first
            by_payload[payload_type].append(line)
        else:
            kept.append(line)
    if first is None:
        return section
    grouped = [line for pt in ordered for line in by_payload[pt]]
    return [*kept[:first], *grouped, *kept[first:]]


def _payload_of(line: str) -> str | None:
    for prefix in ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"):
        if line.startswith(prefix):
            return line[len(prefix) :].partition(" ")[0]
    return None


def _rewrite_profile(sdp: str, payload_type: str, profile_level_id: str) -> str:
    lines, newline = _lines(sdp)
    section = _video_section(lines)
    if section is None:
        return sdp
    start, end = section
    prefix = f"a=fmtp:{payload_type} "
    for index in range(start, end):
        if lines[index].startswith(prefix):
            line = lines[index]
            if _PROFILE.search(line):
                line = _PROFILE.sub(f"profile-level-id={profile_level_id}", line)
            else:
                line += f";profile-level-id={profile_level_id}"
            lines[index] = line
            return newline.join(lines)
    insert_at = next(
        (i + 1 for i in range(start, end) if lines[i].startswith(f"a=rtpmap:{payload_type} ")),
        end,
    )
    lines.insert(insert_at, f"{prefix}profile-level-id={profile_level_id}")
    return newline.join(lines)
