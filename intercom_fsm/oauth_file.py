"""The OAuth credentials file, ``~/.config/intercom-api/oauth.json``:
``{"client_id": ..., "client_secret": ...}``, read when the environment leaves
either out.

A problem is a :class:`ConfigError` naming the file, never quoting its content
(it holds the client secret).
"""

from __future__ import annotations

import json
from pathlib import Path

from intercom_fsm.config_values import ConfigError, VisibleText

_KEYS = ("client_id", "client_secret")


def read_oauth_file(path: Path) -> dict[str, str] | None:
    """``{"client_id", "client_secret"?}`` from the file, None when it does not exist."""
    label = f"OAuth credentials file {path}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(label, f"cannot be read ({error.strerror})") from None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ConfigError(label, "is not valid JSON") from None
    if not isinstance(document, dict):
        raise ConfigError(label, 'must be a JSON object {"client_id": ..., "client_secret": ...}')
    found: dict[str, str] = {}
    parse = VisibleText(secret=True)
    for key in _KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(label, f"'{key}' must be a string")
        if value and value.strip():
            found[key] = parse(f"{label}: {key}", value.strip())
    return found
