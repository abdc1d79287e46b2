"""Secrets never survive redaction, in plain text or through logging."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_fsm.redact import (
    REDACTED,
    RedactingFilter,
    fingerprint,
    one_line,
    one_line_text,
    redact,
)

ACCESS = "eyJhbGciOi.access-token/with+chars=="
REFRESH = "refresh-token-5c2b9f"
DEVICE_CODE = "device-code-0a1b2c3d"


def test_redact_replaces_every_occurrence_and_encoding() -> None:
    text = f"a={ACCESS} b={ACCESS} form=refresh_token={REFRESH}"
    text += " url=" + "eyJhbGciOi.access-token%2Fwith%2Bchars%3D%3D"
    cleaned = redact(text, [ACCESS, REFRESH, None, ""])
    assert "eyJhbGciOi" not in cleaned
    assert REFRESH not in cleaned
    assert cleaned.count(REDACTED) == 4


def test_a_secret_containing_another_is_replaced_whole() -> None:
    assert redact("xx-abcdef-yy", ["abcd", "abcdef"]) == f"xx-{REDACTED}-yy"


def test_very_short_values_are_not_treated_as_secrets() -> None:
    assert redact("a b c", ["a", "b"]) == "a b c"


@given(
    secret=st.text(min_size=4, max_size=30).filter(lambda s: s.strip()),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_redacted_text_never_contains_the_secret(secret: str, before: str, after: str) -> None:
    assert secret not in redact(before + secret + after, [secret])


def test_fingerprint_reveals_little() -> None:
    assert fingerprint(ACCESS) == f"eyJh...({len(ACCESS)} chars)"
    assert fingerprint("short-secret") == "(12 chars)"
    assert fingerprint(None) == "(none)"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, RedactingFilter]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(detail)s"))
    secrets = RedactingFilter([DEVICE_CODE])
    handler.addFilter(secrets)
    parent = logging.getLogger("intercom_fsm_redact_test")
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    try:
        yield parent, stream, secrets
    finally:
        parent.removeHandler(handler)


def test_filter_scrubs_arguments_extras_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO, RedactingFilter],
) -> None:
    parent, stream, secrets = captured
    secrets.add(ACCESS, REFRESH)
    child = parent.getChild("auth")  # propagated records are scrubbed too
    child.info("token %s for %s", ACCESS, DEVICE_CODE, extra={"detail": REFRESH})
    try:
        raise RuntimeError(f"refused {REFRESH}")
    except RuntimeError:
        child.exception("failed", extra={"detail": "-"})
    output = stream.getvalue()
    for secret in (ACCESS, REFRESH, DEVICE_CODE):
        assert secret not in output
    assert output.count(REDACTED) >= 4
    assert "RuntimeError" in output


def test_discarded_secrets_are_no_longer_scrubbed(
    captured: tuple[logging.Logger, io.StringIO, RedactingFilter],
) -> None:
    parent, stream, secrets = captured
    secrets.discard(DEVICE_CODE)
    parent.info("code %s", DEVICE_CODE, extra={"detail": ""})
    assert DEVICE_CODE in stream.getvalue()


def test_one_line_redacts_before_it_cuts() -> None:
    # The secret straddles the cut: cut first, and its first characters would stay.
    text = "x" * 190 + DEVICE_CODE + " tail"
    line = one_line_text(text, [DEVICE_CODE], limit=200)
    assert len(line) <= 200
    assert DEVICE_CODE[:4] not in line
    assert line.startswith("x" * 190 + REDACTED[:7])


def test_one_line_of_an_error_names_its_type_and_flattens_it() -> None:
    error = OSError(f"cannot\nconnect\x1b[31m with {REFRESH}")
    assert one_line(error, [REFRESH]) == f"OSError: cannot connect [31m with {REDACTED}"
    assert one_line(ValueError()) == "ValueError"
    assert len(one_line(RuntimeError("y" * 1000))) == 200
