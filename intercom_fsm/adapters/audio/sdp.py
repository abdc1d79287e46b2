"""Which of an offer's audio sections the device answers (protocol.md
section 3.2), as edits of the SDP text around aiortc.

aiortc answers every audio section it gets, and fails the whole offer when
one has no codec it knows. So the device decides first, on the text:

* the first audio section that offers Opus at 48 kHz, and whose direction the
  device can serve (it listens to a viewer that sends, it sends to one that
  receives), is answered, with Opus alone;
* every other audio section (a second one, one without Opus, one the device
  has no microphone or speaker for) is taken out of what aiortc sees, and put
  back into the answer as ``inactive``: same place, same ``mid``, one of the
  offer's own codecs, the transport of the bundle, so that browsers and
  aiortc accept it, and no media flows.

:func:`plan_offer` does the first half, :meth:`OfferPlan.finish` the second.
An offer left with neither video nor audio to answer is refused
(``ValueError``).
"""

from __future__ import annotations

import attrs

OPUS = "opus/48000"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
TRANSPORT_ATTRIBUTES = (
    "a=ice-ufrag:",
    "a=ice-pwd:",
    "a=ice-options:",
    "a=fingerprint:",
    "a=setup:",
    "a=candidate:",
    "a=end-of-candidates",
    "a=rtcp-mux",
)
"""Copied from the bundle's answered section into an inactive one."""


class UnusableOffer(ValueError):
    """An offer this device cannot answer at all; the text says why, for the
    viewer's log line as it is."""


@attrs.frozen
class Section:
    lines: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.lines[0][2:].split(" ", 1)[0]

    @property
    def port(self) -> str:
        fields = self.lines[0].split()
        return fields[1] if len(fields) > 1 else "0"

    @property
    def payload_types(self) -> list[str]:
        return self.lines[0].split()[3:]

    @property
    def mid(self) -> str | None:
        for line in self.lines:
            if line.startswith("a=mid:"):
                return line[len("a=mid:") :].strip()
        return None

    @property
    def direction(self) -> str:
        for line in self.lines:
            if line[2:] in DIRECTIONS and line.startswith("a="):
                return line[2:]
        return "sendrecv"

    def codecs(self) -> dict[str, str]:
        """Payload type → ``name/rate[/channels]`` (lower case)."""
        found = {}
        for line in self.lines:
            if line.startswith("a=rtpmap:"):
                payload_type, _, name = line[len("a=rtpmap:") :].partition(" ")
                found[payload_type.strip()] = name.strip().lower()
        return found

    def opus_payload_types(self) -> list[str]:
        codecs = self.codecs()
        return [pt for pt in self.payload_types if codecs.get(pt, "").startswith(OPUS)]

    def keeping_only(self, payload_types: list[str]) -> Section:
        """The section with only these payload types (and their lines)."""
        kept = set(payload_types)
        head = self.lines[0].split()[:3] + payload_types
        lines = [" ".join(head)]
        for line in self.lines[1:]:
            for prefix in ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"):
                if line.startswith(prefix):
                    payload_type = line[len(prefix) :].split(" ", 1)[0]
                    if payload_type not in kept and payload_type != "*":
                        break
            else:
                lines.append(line)
        return Section(tuple(lines))


@attrs.frozen
class Rejected:
    index: int
    section: Section
    reason: str


@attrs.frozen
class OfferPlan:
    sdp: str
    """The offer as aiortc is to see it."""
    audio_mid: str | None
    """The answered audio section's mid, if any."""
    send_audio: bool
    receive_audio: bool
    has_video: bool
    rejected: tuple[Rejected, ...] = ()
    newline: str = "\r\n"

    @property
    def answers_audio(self) -> bool:
        return self.audio_mid is not None

    @property
    def audio_direction(self) -> str:
        """The device's side of the answered audio section."""
        if self.send_audio and self.receive_audio:
            return "sendrecv"
        return "sendonly" if self.send_audio else "recvonly"

    def finish(self, answer_sdp: str) -> str:
        """aiortc's answer with the rejected sections back in place, inactive."""
        if not self.rejected:
            return answer_sdp
        session, sections = split(answer_sdp)
        transport = _transport_lines(sections)
        for rejected in sorted(self.rejected, key=lambda r: r.index):
            sections.insert(rejected.index, _inactive(rejected.section, transport))
        mids = [mid for mid in (section.mid for section in sections) if mid is not None]
        session = [
            "a=group:BUNDLE " + " ".join(mids) if line.startswith("a=group:BUNDLE") else line
            for line in session
        ]
        return join(session, sections, self.newline)


def split(sdp: str) -> tuple[list[str], list[Section]]:
    session: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if not line:
            continue
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, [Section(tuple(lines)) for lines in sections]


def join(session: list[str], sections: list[Section], newline: str = "\r\n") -> str:
    lines = session + [line for section in sections for line in section.lines]
    return newline.join(lines) + newline


def plan_offer(offer_sdp: str, has_microphone: bool, has_speaker: bool) -> OfferPlan:
    """Raises ``ValueError`` when nothing in the offer can be answered."""
    session, sections = split(offer_sdp)
    newline = "\r\n" if "\r\n" in offer_sdp else "\n"
    kept: list[Section] = []
    rejected: list[Rejected] = []
    audio_mid: str | None = None
    send = receive = False
    for index, section in enumerate(sections):
        if section.kind != "audio":
            kept.append(section)
            continue
        reason = _refusal(section, audio_mid is not None, has_microphone, has_speaker)
        if reason is not None:
            rejected.append(Rejected(index, section, reason))
            continue
        audio_mid = section.mid
        send = section.direction in ("sendrecv", "recvonly") and has_microphone
        receive = section.direction in ("sendrecv", "sendonly") and has_speaker
        kept.append(section.keeping_only(section.opus_payload_types()))
    has_video = any(section.kind == "video" and section.port != "0" for section in kept)
    if not has_video and audio_mid is None:
        why = "; ".join(r.reason for r in rejected) or "no audio section either"
        raise UnusableOffer(f"the offer has no video section, and no audio to answer ({why})")
    removed = {r.section.mid for r in rejected}
    session = [_without_mids(line, removed) for line in session]
    return OfferPlan(
        sdp=join(session, kept, newline),
        audio_mid=audio_mid,
        send_audio=send,
        receive_audio=receive,
        has_video=has_video,
        rejected=tuple(rejected),
        newline=newline,
    )


def _refusal(
    section: Section, answered_one: bool, has_microphone: bool, has_speaker: bool
) -> str | None:
    if section.port == "0":
        return "the viewer rejected it itself (port 0)"
    if answered_one:
        return "only one audio section is answered"
    if section.mid is None:
        return "it has no a=mid"
    if not section.opus_payload_types():
        offered = ", ".join(sorted(set(section.codecs().values()))) or "none named"
        return f"no codec the device can use (offered: {offered}; the device speaks Opus)"
    direction = section.direction
    wants_sound = direction in ("sendrecv", "recvonly")
    sends_sound = direction in ("sendrecv", "sendonly")
    if not (wants_sound and has_microphone) and not (sends_sound and has_speaker):
        if not has_microphone and not has_speaker:
            return "the device has no audio (AUDIO_SOURCE and AUDIO_SINK are none)"
        return f"nothing to do for a {direction} section with this device's audio"
    return None


def _without_mids(line: str, removed: set[str | None]) -> str:
    if not line.startswith("a=group:BUNDLE"):
        return line
    fields = line.split()
    return " ".join([fields[0], *[mid for mid in fields[1:] if mid not in removed]])


def _transport_lines(sections: list[Section]) -> list[str]:
    for section in sections:
        lines = [line for line in section.lines if line.startswith(TRANSPORT_ATTRIBUTES)]
        if lines:
            return lines
    return []


def _inactive(offered: Section, transport: list[str]) -> Section:
    payload_types = offered.payload_types[:1] or ["0"]
    head = offered.lines[0].split()[:3]
    lines = [" ".join([head[0], "9", head[2], *payload_types]), "c=IN IP4 0.0.0.0"]
    lines += [f"a=mid:{offered.mid}"] if offered.mid is not None else []
    lines += ["a=inactive", *transport]
    lines += [
        line
        for line in offered.lines
        if line.startswith(("a=rtpmap:", "a=fmtp:"))
        and line.split(":", 1)[1].split(" ", 1)[0] == payload_types[0]
    ]
    return Section(tuple(lines))
