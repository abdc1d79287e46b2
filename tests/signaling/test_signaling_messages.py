"""The signaling parser and encoder (protocol.md section 2), without a socket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_fsm.adapters.signaling_messages import (
    MAX_TYPE_CHARS,
    encode_answer,
    encode_ice,
    parse_frame,
)
from intercom_fsm.events import (
    DEFAULT_SESSION,
    HangupReceived,
    IceCandidate,
    InvalidMessage,
    OfferReceived,
    RemoteIceCandidate,
    UnknownMessage,
)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
CANDIDATE = "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host"
SECRET_LOOKING = "secret-value-never-echoed-4242"
RESULT_TYPES = (OfferReceived, RemoteIceCandidate, HangupReceived, InvalidMessage, UnknownMessage)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def ice(candidate: Any, **fields: Any) -> str:
    return frame(type="ice", candidate=candidate, **fields)


def wire_candidate(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}
    document.update(overrides)
    return document


# --- Frames that parse -------------------------------------------------------------------

VALID = [
    pytest.param(frame(type="offer", sdp=SDP), OfferReceived(DEFAULT_SESSION, SDP), id="offer"),
    pytest.param(
        frame(type="offer", sdp=SDP, session="viewer-1"),
        OfferReceived("viewer-1", SDP),
        id="offer-with-session",
    ),
    pytest.param(
        frame(type="offer", sdp=SDP, extra={"anything": [1, 2]}),
        OfferReceived(DEFAULT_SESSION, SDP),
        id="offer-extra-field-ignored",
    ),
    pytest.param(
        ice(wire_candidate(), session="v"),
        RemoteIceCandidate("v", IceCandidate(CANDIDATE, "0", 0)),
        id="ice",
    ),
    pytest.param(
        ice({"candidate": CANDIDATE, "sdpMid": None, "sdpMLineIndex": None}),
        RemoteIceCandidate(DEFAULT_SESSION, IceCandidate(CANDIDATE, None, None)),
        id="ice-null-mid-and-index",
    ),
    pytest.param(
        ice({"candidate": CANDIDATE}),
        RemoteIceCandidate(DEFAULT_SESSION, IceCandidate(CANDIDATE, None, None)),
        id="ice-missing-mid-and-index-are-null",
    ),
    pytest.param(ice(None), RemoteIceCandidate(DEFAULT_SESSION, None), id="ice-null-candidate"),
    pytest.param(
        ice(wire_candidate(candidate="")),
        RemoteIceCandidate(DEFAULT_SESSION, IceCandidate("", "0", 0)),
        id="ice-empty-candidate-is-end-of-candidates",
    ),
    pytest.param(frame(type="hangup"), HangupReceived(DEFAULT_SESSION), id="hangup"),
    pytest.param(frame(type="hangup", session="v2"), HangupReceived("v2"), id="hangup-session"),
    pytest.param(
        frame(type="hangup", session=""), HangupReceived(DEFAULT_SESSION), id="empty-session"
    ),
    pytest.param(frame(type="presence", online=True), UnknownMessage("presence"), id="unknown"),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_frames_that_parse(data: str, expected: object) -> None:
    assert parse_frame(data) == expected


# --- Frames that do not: (data, message_type, fragments the problem must hold) ----------

INVALID = [
    pytest.param("{not json", None, ["not valid JSON"], id="invalid-json"),
    pytest.param("", None, ["not valid JSON"], id="empty-frame"),
    pytest.param("[1, 2]", None, ["array", "not a JSON object"], id="list"),
    pytest.param("42", None, ["number", "not a JSON object"], id="number"),
    pytest.param('"offer"', None, ["string", "not a JSON object"], id="string"),
    pytest.param("null", None, ["null", "not a JSON object"], id="null"),
    pytest.param(b'{"type": "hangup"}', None, ["binary frame"], id="binary-frame"),
    pytest.param(frame(sdp=SDP), None, ["missing field 'type'"], id="missing-type"),
    pytest.param(frame(type=7), None, ["field 'type' must be a string"], id="type-number"),
    pytest.param(frame(type=None), None, ["field 'type' must be a string"], id="type-null"),
    pytest.param(frame(type=""), None, ["field 'type' is empty"], id="type-empty"),
    pytest.param(frame(type="offer"), "offer", ["offer: missing field 'sdp'"], id="offer-no-sdp"),
    pytest.param(
        frame(type="offer", sdp=12),
        "offer",
        ["offer: field 'sdp' must be a string", "number"],
        id="sdp-number",
    ),
    pytest.param(
        frame(type="offer", sdp=None),
        "offer",
        ["offer: field 'sdp' must be a string"],
        id="sdp-null",
    ),
    pytest.param(frame(type="offer", sdp=""), "offer", ["field 'sdp' is empty"], id="sdp-empty"),
    pytest.param(
        frame(type="offer", sdp=SECRET_LOOKING),
        "offer",
        ["field 'sdp' is not SDP", "v=0"],
        id="sdp-not-sdp",
    ),
    pytest.param(
        frame(type="offer", sdp="v=0\r\n" + "a=x\r\n" * 20_000),
        "offer",
        ["field 'sdp' is larger than 65536 bytes"],
        id="sdp-oversized",
    ),
    pytest.param(
        frame(type="offer", sdp="v=0\r\n" + "é" * 40_000),
        "offer",
        ["field 'sdp' is larger than 65536 bytes"],
        id="sdp-oversized-in-utf8-bytes",
    ),
    pytest.param(
        '{"type": "offer", "sdp": "v=0 \\ud800"}',
        "offer",
        ["field 'sdp' is not valid Unicode"],
        id="sdp-lone-surrogate",
    ),
    pytest.param(
        frame(type="offer", sdp=SDP, session=5),
        "offer",
        ["offer: field 'session' must be a string"],
        id="session-number",
    ),
    pytest.param(
        frame(type="hangup", session=["v"]),
        "hangup",
        ["hangup: field 'session' must be a string", "array"],
        id="hangup-session-list",
    ),
    pytest.param(
        frame(type="hangup", session="a\nb"),
        "hangup",
        ["field 'session' contains control characters"],
        id="session-control-character",
    ),
    pytest.param(
        frame(type="hangup", session="s" * 300),
        "hangup",
        ["field 'session' is longer than 256 characters"],
        id="session-too-long",
    ),
    pytest.param(frame(type="ice"), "ice", ["ice: missing field 'candidate'"], id="ice-missing"),
    pytest.param(
        ice(CANDIDATE), "ice", ["field 'candidate' must be an object or null"], id="ice-str"
    ),
    pytest.param(ice([1]), "ice", ["field 'candidate' must be an object or null"], id="ice-list"),
    pytest.param(ice({}), "ice", ["missing field 'candidate.candidate'"], id="ice-empty-object"),
    pytest.param(
        ice(wire_candidate(candidate=17)),
        "ice",
        ["field 'candidate.candidate' must be a string"],
        id="candidate-string-not-str",
    ),
    pytest.param(
        ice(wire_candidate(candidate=None)),
        "ice",
        ["field 'candidate.candidate' must be a string", "null"],
        id="candidate-string-null",
    ),
    pytest.param(
        ice(wire_candidate(sdpMid=0)),
        "ice",
        ["field 'candidate.sdpMid' must be a string"],
        id="sdpmid-number",
    ),
    pytest.param(
        ice(wire_candidate(sdpMLineIndex=True)),
        "ice",
        ["field 'candidate.sdpMLineIndex' must be an integer or null", "boolean"],
        id="mline-index-bool",
    ),
    pytest.param(
        ice(wire_candidate(sdpMLineIndex=-1)),
        "ice",
        ["field 'candidate.sdpMLineIndex' must be between 0 and"],
        id="mline-index-negative",
    ),
    pytest.param(
        ice(wire_candidate(sdpMLineIndex="0")),
        "ice",
        ["field 'candidate.sdpMLineIndex' must be an integer or null", "string"],
        id="mline-index-str",
    ),
    pytest.param(
        ice(wire_candidate(sdpMLineIndex=1.5)),
        "ice",
        ["field 'candidate.sdpMLineIndex' must be an integer or null"],
        id="mline-index-float",
    ),
    pytest.param(
        ice(wire_candidate(sdpMLineIndex=10**9)),
        "ice",
        ["field 'candidate.sdpMLineIndex' must be between 0 and 65535"],
        id="mline-index-huge",
    ),
    pytest.param(
        ice(wire_candidate(sdpMid=1, sdpMLineIndex=False)),
        "ice",
        ["field 'candidate.sdpMid' must be", "field 'candidate.sdpMLineIndex' must be"],
        id="two-wrong-fields-both-named",
    ),
    pytest.param(
        '{"type": "ice", "candidate": {"candidate": "", "sdpMLineIndex": ' + "9" * 5000 + "}}",
        None,
        ["number longer than"],
        id="huge-integer",
    ),
    pytest.param(
        '{"type": "ice", "candidate": {"candidate": "", "sdpMLineIndex": 1e999}}',
        "ice",
        ["field 'candidate.sdpMLineIndex' must be an integer or null"],
        id="huge-float",
    ),
    pytest.param('{"type": "offer", "sdp": NaN}', None, ["NaN or Infinity"], id="nan-is-not-json"),
    pytest.param(
        '{"type": "offer", "sdp": ' + "[" * 100_000 + "]" * 100_000 + "}",
        None,
        ["nested too deeply"],
        id="deeply-nested",
    ),
]


@pytest.mark.parametrize(("data", "message_type", "fragments"), INVALID)
def test_malformed_frames_become_invalid_message(
    data: str | bytes, message_type: str | None, fragments: list[str]
) -> None:
    event = parse_frame(data)
    assert isinstance(event, InvalidMessage), event
    assert event.message_type == message_type
    for fragment in fragments:
        assert fragment in event.problem, event.problem
    if message_type is not None:
        assert event.problem.startswith(f"{message_type}: "), event.problem
    assert SECRET_LOOKING not in event.problem


def test_the_tables_cover_enough_cases() -> None:
    assert len(VALID) + len(INVALID) >= 20


def test_problems_never_quote_field_values() -> None:
    for document in (
        {"type": "offer", "sdp": {"x": SECRET_LOOKING}},
        {"type": "offer", "sdp": SDP, "session": [SECRET_LOOKING]},
        {"type": "ice", "candidate": SECRET_LOOKING},
        {"type": "ice", "candidate": {"candidate": [SECRET_LOOKING], "sdpMid": SECRET_LOOKING}},
        {"type": "hangup", "session": {SECRET_LOOKING: 1}},
    ):
        event = parse_frame(json.dumps(document))
        assert isinstance(event, InvalidMessage)
        assert SECRET_LOOKING not in event.problem


def test_sdp_limit_is_a_parameter() -> None:
    small = frame(type="offer", sdp="v=0\r\n" + "a" * 100)
    assert isinstance(parse_frame(small, max_sdp_bytes=1000), OfferReceived)
    event = parse_frame(small, max_sdp_bytes=50)
    assert isinstance(event, InvalidMessage)
    assert "larger than 50 bytes" in event.problem


def test_unknown_type_is_made_printable_and_short() -> None:
    event = parse_frame(frame(type="x\x1b[2J" + "y" * 500))
    assert isinstance(event, UnknownMessage)
    assert len(event.message_type) <= MAX_TYPE_CHARS
    assert "\x1b" not in event.message_type
    assert event.message_type.startswith("x?[2J")


# --- Encoding ---------------------------------------------------------------------------


def test_answer_omits_the_default_session_and_echoes_others() -> None:
    assert json.loads(encode_answer(DEFAULT_SESSION, SDP)) == {"type": "answer", "sdp": SDP}
    assert json.loads(encode_answer("viewer-1", SDP)) == {
        "type": "answer",
        "sdp": SDP,
        "session": "viewer-1",
    }


def test_ice_encodes_the_protocol_shape() -> None:
    assert json.loads(encode_ice("v", IceCandidate(CANDIDATE, "0", 1))) == {
        "type": "ice",
        "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 1},
        "session": "v",
    }
    assert json.loads(encode_ice(DEFAULT_SESSION, IceCandidate("", None, None))) == {
        "type": "ice",
        "candidate": {"candidate": "", "sdpMid": None, "sdpMLineIndex": None},
    }
    assert json.loads(encode_ice(DEFAULT_SESSION, None)) == {"type": "ice", "candidate": None}


names = st.characters(exclude_categories=("Cc", "Cs"))
sessions = st.one_of(st.just(DEFAULT_SESSION), st.text(names, max_size=256))
candidates = st.one_of(
    st.none(),
    st.builds(
        IceCandidate,
        candidate=st.text(max_size=200),
        sdp_mid=st.one_of(st.none(), st.text(names, max_size=20)),
        sdp_mline_index=st.one_of(st.none(), st.integers(0, 65535)),
    ),
)


@settings(max_examples=200, deadline=None)
@given(session=sessions, candidate=candidates)
def test_encoded_ice_parses_back(session: str, candidate: IceCandidate | None) -> None:
    assert parse_frame(encode_ice(session, candidate)) == RemoteIceCandidate(session, candidate)


# --- Fuzzing: nothing escapes ------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["sdp", "session", "candidate", "sdpMid", "sdpMLineIndex", "type", "x"]
)
candidate_objects = st.dictionaries(
    st.sampled_from(["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"]), json_values
)
message_dicts = st.builds(
    lambda kind, fields, candidate: {**fields, "type": kind, **candidate},
    st.sampled_from(["offer", "ice", "hangup", "other"]),
    st.dictionaries(field_names, json_values, max_size=5),
    st.one_of(st.just({}), candidate_objects.map(lambda c: {"candidate": c})),
)


def _assert_one_event(data: str | bytes) -> None:
    assert isinstance(parse_frame(data), RESULT_TYPES)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_arbitrary_text(data: str) -> None:
    _assert_one_event(data)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_arbitrary_json_values(value: Any) -> None:
    _assert_one_event(json.dumps(value))


@settings(max_examples=500, deadline=None)
@given(message_dicts)
def test_fuzz_messages_of_each_type(document: dict[str, Any]) -> None:
    event = parse_frame(json.dumps(document))
    assert isinstance(event, RESULT_TYPES)
    if isinstance(event, InvalidMessage) and event.problem.startswith("frame "):
        return  # refused at the JSON level (a number too long), before the type was read
    if isinstance(event, InvalidMessage):
        assert event.message_type == document["type"]
    if document["type"] == "other":
        assert event == UnknownMessage("other")


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    event = parse_frame(data)
    assert isinstance(event, InvalidMessage)
    assert "binary frame" in event.problem
