"""The OAuth credentials file, ``~/.config/intercom-api/oauth.json``:
``{"client_id": ..., "client_secret": ...}``, read when the environment leaves
either out.

It holds the client secret, so it gets the token file's scrutiny
(:mod:`intercom_fsm.file_safety`), as ssh does for a private key: it must not
be a symbolic link, must belong to this user (or root), and nobody else may
write to it or to its directory, nor read it when it holds a secret. The
daemon does not change an operator's configuration: each of these is a
:class:`ConfigError` that says what to fix. Problems never quote the file's
content.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

from intercom_fsm.config_values import ConfigError, VisibleText
from intercom_fsm.file_safety import check_directory, trusted_owner

_KEYS = ("client_id", "client_secret")
MAX_FILE_BYTES = 64 * 1024


def read_oauth_file(path: Path) -> dict[str, str] | None:
    """``{"client_id", "client_secret"?}`` from the file, None when it does not exist."""
    label = f"OAuth credentials file {path}"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(label, "is a symbolic link; give the file itself") from None
        raise ConfigError(label, f"cannot be read ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        raw = file.read(MAX_FILE_BYTES + 1) if stat.S_ISREG(info.st_mode) else b""
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(label, "is not a regular file")
    _check_trust(label, path, info)
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
    mode = stat.S_IMODE(info.st_mode)
    if "client_secret" in found and mode & (stat.S_IRGRP | stat.S_IROTH):
        raise ConfigError(
            label, f"has mode {mode:04o}: others can read the client secret; chmod 600 it"
        )
    return found


def _check_trust(label: str, path: Path, info: os.stat_result) -> None:
    if not trusted_owner(info.st_uid):
        raise ConfigError(
            label,
            f"is owned by uid {info.st_uid}, neither this user (uid {os.geteuid()}) nor root: "
            "another user could have written it",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(label, f"has mode {mode:04o}: others can change it; chmod 600 it")
    refusal = check_directory(path.parent, tighten=False).refusal
    if refusal is not None:
        raise ConfigError(label, f"is not used: {refusal}")
