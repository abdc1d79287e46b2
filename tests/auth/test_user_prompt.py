"""The sign-in message shown to the person."""

from __future__ import annotations

import io

from intercom_fsm.adapters.user_prompt import describe_minutes, show_user_code
from intercom_fsm.effects import ShowUserCode

EFFECT = ShowUserCode(
    user_code="WDJB-MJHT",
    verification_uri="https://example.com/device",
    verification_uri_complete="https://example.com/device?user_code=WDJB-MJHT",
    expires_in=900,
)


def test_message_has_the_code_the_links_and_the_expiry() -> None:
    stream = io.StringIO()
    show_user_code(EFFECT, stream, interactive=False)
    text = stream.getvalue()
    assert "W D J B - M J H T" in text
    assert "https://example.com/device\n" in text
    assert "https://example.com/device?user_code=WDJB-MJHT" in text
    assert "15 minutes" in text
    assert "\u2580" not in text
    assert "scan" not in text


def test_interactive_terminal_gets_a_qr_code() -> None:
    stream = io.StringIO()
    show_user_code(EFFECT, stream, interactive=True)
    text = stream.getvalue()
    assert "scan" in text
    assert "\u2584" in text or "\u2580" in text


def test_qr_code_falls_back_when_the_stream_cannot_encode_blocks() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    show_user_code(EFFECT, stream, interactive=True)
    stream.flush()
    assert b"scan" in raw.getvalue()


def test_no_qr_code_without_a_complete_link() -> None:
    stream = io.StringIO()
    effect = ShowUserCode("ABCD", "https://example.com/device", None, 30)
    show_user_code(effect, stream, interactive=True)
    assert "scan" not in stream.getvalue()
    assert "1 minute." in stream.getvalue()


def test_escape_sequences_from_the_server_never_reach_the_terminal() -> None:
    stream = io.StringIO()
    effect = ShowUserCode("AB\x1b[2JCD", "https://e.com/\x07d", "https://e.com/\x1b]0;x\x07", 60)
    show_user_code(effect, stream, interactive=True)
    assert "\x1b" not in stream.getvalue()
    assert "\x07" not in stream.getvalue()


def test_describe_minutes() -> None:
    assert describe_minutes(61) == "2 minutes"
    assert describe_minutes(0) == "moments"
    assert describe_minutes(float("nan")) == "moments"
