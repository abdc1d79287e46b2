"""Logs for operators: human-readable lines or JSON lines, on stderr, with
every known secret scrubbed.

A state change is one line: ``from → to``, the event, the reason (and the
viewer's session for a session machine). Internal transitions are logged at
DEBUG only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from intercom_fsm.machine.lifecycle import TransitionRecord
from intercom_fsm.redact import RedactingFilter

TRANSITIONS = logging.getLogger("intercom_fsm.transitions")

_FIELDS = ("state", "from", "to", "event", "session", "reason")


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        # The redacting filter formatted the traceback into exc_text and
        # scrubbed it: formatting exc_info again would bring the secrets back.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["error"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, json_lines: bool, stream: TextIO | None = None) -> RedactingFilter:
    """Install one stderr handler on the root logger; return its redaction
    filter, for the runtime to register secrets with."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonLinesFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    secrets = RedactingFilter()
    handler.addFilter(secrets)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # The state machine library narrates every step at INFO.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return secrets


def log_transition(record: TransitionRecord) -> None:
    who = f"viewer {record.session!r}" if record.session is not None else "state"
    level = logging.INFO if record.changed_state else logging.DEBUG
    if not TRANSITIONS.isEnabledFor(level):
        return
    TRANSITIONS.log(
        level,
        "%s %s → %s on %s: %s",
        who,
        record.source,
        record.dest,
        record.event,
        record.reason,
        extra={
            "state": record.dest,
            "from": record.source,
            "to": record.dest,
            "event": record.event,
            "session": record.session,
            "reason": record.reason,
        },
    )
