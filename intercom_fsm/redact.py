"""Keeping secrets out of logs and error messages.

Tokens, the client secret and the device code must never appear in clear in
anything the daemon prints. Code that builds messages avoids them in the first
place; this module is the safety net behind it:

* :func:`redact` replaces known secret strings in one text;
* :class:`RedactingFilter` is a :class:`logging.Filter` holding the secrets
  currently in use (the runtime registers each new token as it arrives) and
  scrubbing every record that passes through a handler it is attached to;
* :func:`one_line` and :func:`one_line_text` make an error or a server's text
  into one bounded log line: secrets are replaced *before* the text is cut, so
  no prefix of a secret survives at the cut;
* :func:`fingerprint` gives operators a short, non-secret handle on a value.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

MIN_SECRET_LENGTH = 4
"""Shorter values are not treated as secrets: replacing every "a" or "12" in
a log line would destroy it and protect nothing."""

_FINGERPRINT_MIN_LENGTH = 16
"""Below this length even four characters would give away too much."""

MAX_LINE_CHARS = 200
"""How much of an error's or a server's text goes into one log line."""


def _variants(secret: str) -> set[str]:
    """The secret as it may appear in a log: raw, and percent-encoded as it is
    in a form body or URL."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def _replacements(secrets: Iterable[str | None]) -> list[str]:
    found: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            found |= _variants(secret)
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every secret replaced by ``[redacted]``.

    ``None`` and very short entries are skipped, so callers can pass optional
    settings such as a missing client secret directly.
    """
    for secret in _replacements(secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def one_line_text(
    text: str, secrets: Iterable[str | None] = (), limit: int = MAX_LINE_CHARS
) -> str:
    """``text`` as one log line: known secrets replaced, control and separator
    characters made spaces, runs of spaces made one, then cut to ``limit``
    characters (ending in ``...`` when cut). The secrets go first: a cut
    through the middle of a secret would leave its prefix in clear."""
    secrets = tuple(secrets)
    kept = redact(text, secrets)
    kept = "".join(
        char if unicodedata.category(char)[0] not in "CZ" or char == " " else " " for char in kept
    )
    # Again: a secret split by a newline is whole once the line is joined.
    kept = redact(" ".join(kept.split()), secrets)
    if len(kept) > limit:
        kept = kept[: max(0, limit - 3)] + "..."
    return kept


def one_line(
    error: BaseException, secrets: Iterable[str | None] = (), limit: int = MAX_LINE_CHARS
) -> str:
    """One redacted, bounded line about an error: ``"OSError: text"``, or the
    type's name alone when the error has no text (aiortc raises some, a bad
    SDP line or candidate, with an empty message)."""
    name = type(error).__name__
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not hide the error itself
        text = ""
    return one_line_text(f"{name}: {text}" if text.strip() else name, secrets, limit)


def fingerprint(secret: str | None) -> str:
    """A short handle for operators that does not reveal the value: the first
    four characters and the length (only the length for short values)."""
    if not secret:
        return "(none)"
    if len(secret) < _FINGERPRINT_MIN_LENGTH:
        return f"({len(secret)} chars)"
    return f"{secret[:4]}...({len(secret)} chars)"


_STANDARD_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class RedactingFilter(logging.Filter):
    """Scrubs registered secrets from every record it sees.

    Attach it to handlers (``handler.addFilter(f)``), not to a logger: a
    logger's filters do not see records propagated from its children. The
    record's message is formatted here, so ``%``-arguments, the exception text,
    the stack text and string ``extra=`` fields are all checked.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Register secrets (None and empty values are ignored)."""
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def discard(self, *secrets: str | None) -> None:
        """Forget secrets that are no longer in use (e.g. a rotated token).

        Keeping old ones is harmless; dropping them keeps the set small.
        """
        with self._lock:
            self._secrets.difference_update(s for s in secrets if s)

    @property
    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value, secrets))
        return True
