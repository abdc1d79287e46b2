"""The signaling socket's messages (protocol.md section 2), parsed and encoded.

Everything here is pure. :func:`parse_frame` turns one received frame into one
of the machine's events and never raises, whatever the frame holds, so it can
be fuzzed without a socket. A frame that does not parse becomes
:class:`InvalidMessage` whose problem names the message type and the field
(``"offer: field 'sdp' must be a string (got a number)"``) and never quotes a
value from the frame: the backend relays viewers' frames, and a frame may
carry anything.

What is decided here, beyond the protocol's table:

* Extra fields are ignored (a backend may add its own); missing ``sdpMid`` /
  ``sdpMLineIndex`` inside a candidate count as null.
* ``session`` present but empty is the default viewer, as if absent.
* Deeper SDP checks (can it be applied, does it offer video) are the peer
  adapter's: an offer here only has to look like SDP (starts with ``v=0``).
* Bounds: ``sdp`` at most ``max_sdp_bytes`` UTF-8 bytes, ``session`` and
  ``sdpMid`` at most :data:`MAX_NAME_CHARS`, a candidate line at most
  :data:`MAX_CANDIDATE_CHARS`, ``sdpMLineIndex`` at most
  :data:`MAX_MLINE_INDEX`, JSON numbers at most :data:`MAX_NUMBER_DIGITS`
  digits (Python's int parsing is quadratic in the digits).

The message shapes are attrs classes structured by the project's strict cattrs
converter, so a number is never silently accepted where a string belongs.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Final, NewType

import attrs
import cattrs
from cattrs import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from intercom_fsm.events import (
    DEFAULT_SESSION,
    HangupReceived,
    IceCandidate,
    InvalidMessage,
    OfferReceived,
    RemoteIceCandidate,
    SessionId,
    UnknownMessage,
)
from intercom_fsm.strict_json import FieldProblem, json_type_name, make_strict_converter

SignalingEvent = (
    OfferReceived | RemoteIceCandidate | HangupReceived | InvalidMessage | UnknownMessage
)

DEFAULT_MAX_SDP_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 256
MAX_CANDIDATE_CHARS: Final = 4096
MAX_MLINE_INDEX: Final = 65535
MAX_NUMBER_DIGITS: Final = 32
MAX_TYPE_CHARS: Final = 64
"""An unknown type is reported (and logged once per type by the machine): a
longer one is cut so a hostile frame cannot flood the log."""

OFFER, ICE, HANGUP, ANSWER = "offer", "ice", "hangup", "answer"

# --- Strict value types ---------------------------------------------------------

ShortName = NewType("ShortName", str)
"""A string of at most MAX_NAME_CHARS characters, no control characters: it
names something in logs (a viewer session, a media id)."""

CandidateLine = NewType("CandidateLine", str)
"""An ICE candidate attribute; empty means end of candidates."""

LineIndex = NewType("LineIndex", int)
"""A JSON integer (never a boolean) between 0 and MAX_MLINE_INDEX."""


def _structure_short_name(value: Any, _type: Any) -> str:
    text = _string(value)
    if len(text) > MAX_NAME_CHARS:
        raise FieldProblem(f"is longer than {MAX_NAME_CHARS} characters")
    if _has_control_characters(text):
        raise FieldProblem("contains control characters")
    return text


def _structure_candidate_line(value: Any, _type: Any) -> str:
    text = _string(value)
    if len(text) > MAX_CANDIDATE_CHARS:
        raise FieldProblem(f"is longer than {MAX_CANDIDATE_CHARS} characters")
    return text


def _structure_line_index(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldProblem(f"must be an integer or null (got {json_type_name(value)})")
    if not 0 <= value <= MAX_MLINE_INDEX:
        raise FieldProblem(f"must be between 0 and {MAX_MLINE_INDEX}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldProblem(f"must be a string (got {json_type_name(value)})")
    return value


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


# --- Message shapes ---------------------------------------------------------------


@attrs.frozen
class WireCandidate:
    """``{"candidate": str, "sdpMid": str|null, "sdpMLineIndex": int|null}``."""

    candidate: CandidateLine
    sdp_mid: ShortName | None = None
    sdp_mline_index: LineIndex | None = None


_WIRE_NAMES: Final = {"sdp_mid": "sdpMid", "sdp_mline_index": "sdpMLineIndex"}


@attrs.frozen
class OfferMessage:
    sdp: str = attrs.field(repr=False)
    session: ShortName | None = None


@attrs.frozen
class IceMessage:
    candidate: WireCandidate | None
    session: ShortName | None = None


@attrs.frozen
class HangupMessage:
    session: ShortName | None = None


def _make_converter() -> cattrs.Converter:
    converter = make_strict_converter()
    # Replaces the shared hook's wording so every problem reads "must be ...".
    converter.register_structure_hook(str, lambda value, _type: _string(value))
    converter.register_structure_hook(ShortName, _structure_short_name)
    converter.register_structure_hook(CandidateLine, _structure_candidate_line)
    converter.register_structure_hook(LineIndex, _structure_line_index)
    sdp_mid = override(rename=_WIRE_NAMES["sdp_mid"])
    sdp_mline_index = override(rename=_WIRE_NAMES["sdp_mline_index"])
    structure_candidate = make_dict_structure_fn(
        WireCandidate, converter, sdp_mid=sdp_mid, sdp_mline_index=sdp_mline_index
    )

    def structure_wire_candidate(value: Any, _type: Any) -> WireCandidate:
        # Without this check a string would reach the generated function and
        # fail with an error that says nothing useful.
        if not isinstance(value, dict):
            raise FieldProblem(f"must be an object or null (got {json_type_name(value)})")
        return structure_candidate(value, WireCandidate)

    converter.register_structure_hook(WireCandidate, structure_wire_candidate)
    converter.register_unstructure_hook(
        WireCandidate,
        make_dict_unstructure_fn(
            WireCandidate, converter, sdp_mid=sdp_mid, sdp_mline_index=sdp_mline_index
        ),
    )
    return converter


MESSAGE_CONVERTER: Final = _make_converter()


# --- Parsing ------------------------------------------------------------------------


class _Rejected(Exception):
    """Internal: the frame is unusable; carries a problem safe to log."""

    def __init__(self, problem: str, message_type: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.message_type = message_type


def parse_frame(data: str | bytes, *, max_sdp_bytes: int = DEFAULT_MAX_SDP_BYTES) -> SignalingEvent:
    """One received frame as an event. Never raises.

    ``bytes`` is a binary frame, which the protocol does not use.
    """
    try:
        return _parse(data, max_sdp_bytes)
    except _Rejected as rejected:
        return InvalidMessage(problem=rejected.problem, message_type=rejected.message_type)
    except Exception as error:  # the parser's promise: nothing escapes
        return InvalidMessage(problem=f"unexpected {type(error).__name__} while parsing the frame")


def _parse(data: str | bytes, max_sdp_bytes: int) -> SignalingEvent:
    if not isinstance(data, str):
        raise _Rejected("binary frame: the protocol sends JSON in text frames only")
    document = _json_object(data)
    if "type" not in document:
        raise _Rejected("missing field 'type'")
    message_type = document["type"]
    if not isinstance(message_type, str):
        raise _Rejected(f"field 'type' must be a string (got {json_type_name(message_type)})")
    if message_type == OFFER:
        offer = _structure(document, OfferMessage, OFFER)
        _check_sdp(offer.sdp, max_sdp_bytes)
        return OfferReceived(session=_session(offer.session), sdp=offer.sdp)
    if message_type == ICE:
        ice = _structure(document, IceMessage, ICE)
        return RemoteIceCandidate(session=_session(ice.session), candidate=_candidate(ice))
    if message_type == HANGUP:
        hangup = _structure(document, HangupMessage, HANGUP)
        return HangupReceived(session=_session(hangup.session))
    if not message_type:
        raise _Rejected("field 'type' is empty")
    return UnknownMessage(message_type=shown_type(message_type))


def _json_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except _Rejected:
        raise
    except RecursionError:
        raise _Rejected("frame is nested too deeply to read") from None
    except ValueError:
        raise _Rejected("frame is not valid JSON") from None
    if not isinstance(document, dict):
        raise _Rejected(f"frame is {json_type_name(document)}, not a JSON object")
    return document


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_NUMBER_DIGITS:
        raise _Rejected(f"frame has a number longer than {MAX_NUMBER_DIGITS} digits")
    return int(digits)


def _no_constant(name: str) -> Any:
    raise _Rejected("frame uses NaN or Infinity, which JSON does not allow")


def _structure(document: dict[str, Any], shape: type[Any], message_type: str) -> Any:
    try:
        return MESSAGE_CONVERTER.structure(document, shape)
    except Exception as error:
        raise _Rejected(f"{message_type}: {_describe(error)}", message_type) from None


def _describe(error: BaseException, prefix: str = "") -> str:
    """``"field 'candidate.sdpMid' must be ..."`` for a cattrs failure, naming
    fields as the wire does and never quoting a value."""
    if not isinstance(error, ClassValidationError):
        return "the message does not have the expected shape"
    problems: list[str] = []
    for sub in error.exceptions:
        notes = [n for n in getattr(sub, "__notes__", []) if isinstance(n, AttributeValidationNote)]
        name = _WIRE_NAMES.get(notes[0].name, notes[0].name) if notes else "?"
        field = f"{prefix}{name}"
        if isinstance(sub, ClassValidationError):
            problems.append(_describe(sub, f"{field}."))
        elif isinstance(sub, KeyError):
            problems.append(f"missing field '{field}'")
        elif isinstance(sub, FieldProblem):
            problems.append(f"field '{field}' {sub}")
        else:
            # Foreign exception text may quote the value: say only where it was.
            problems.append(f"field '{field}' has an invalid value")
    return "; ".join(problems) or "the message does not have the expected shape"


def _check_sdp(sdp: str, max_sdp_bytes: int) -> None:
    if not sdp:
        raise _Rejected("offer: field 'sdp' is empty", OFFER)
    # Characters never outnumber UTF-8 bytes: a long string is refused before
    # the work of encoding it.
    too_large = f"offer: field 'sdp' is larger than {max_sdp_bytes} bytes"
    if len(sdp) > max_sdp_bytes:
        raise _Rejected(too_large, OFFER)
    try:
        size = len(sdp.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Rejected("offer: field 'sdp' is not valid Unicode text", OFFER) from None
    if size > max_sdp_bytes:
        raise _Rejected(too_large, OFFER)
    if not sdp.startswith("v=0"):
        raise _Rejected("offer: field 'sdp' is not SDP (it must start with 'v=0')", OFFER)


def _session(session: str | None) -> SessionId:
    return session or DEFAULT_SESSION


def _candidate(ice: IceMessage) -> IceCandidate | None:
    wire = ice.candidate
    if wire is None:
        return None
    return IceCandidate(
        candidate=wire.candidate, sdp_mid=wire.sdp_mid, sdp_mline_index=wire.sdp_mline_index
    )


def shown_type(message_type: str) -> str:
    """A message type made safe for one log line: printable, bounded."""
    printable = "".join(
        "?" if unicodedata.category(char)[0] in "CZ" and char != " " else char
        for char in message_type[: MAX_TYPE_CHARS + 1]
    )
    if len(printable) > MAX_TYPE_CHARS:
        return printable[: MAX_TYPE_CHARS - 3] + "..."
    return printable


# --- Encoding -----------------------------------------------------------------------


def encode_answer(session: SessionId, sdp: str) -> str:
    """The ``answer`` message; ``session`` is left out for the default viewer."""
    return _encode({"type": ANSWER, "sdp": sdp}, session)


def encode_ice(session: SessionId, candidate: IceCandidate | None) -> str:
    """The ``ice`` message; ``None`` is end of candidates (``"candidate": null``)."""
    wire: dict[str, Any] | None = None
    if candidate is not None:
        wire = MESSAGE_CONVERTER.unstructure(
            WireCandidate(
                candidate=CandidateLine(candidate.candidate),
                sdp_mid=ShortName(candidate.sdp_mid) if candidate.sdp_mid is not None else None,
                sdp_mline_index=(
                    LineIndex(candidate.sdp_mline_index)
                    if candidate.sdp_mline_index is not None
                    else None
                ),
            ),
            WireCandidate,
        )
    return _encode({"type": ICE, "candidate": wire}, session)


def _encode(message: dict[str, Any], session: SessionId) -> str:
    if session != DEFAULT_SESSION:
        message["session"] = session
    return json.dumps(message, separators=(",", ":"))
