"""The token file (protocol.md 1.4): access token, refresh token, absolute
expiry and the device code, kept between runs.

The file is JSON ``{"access_token", "refresh_token", "expires_at",
"device_code", "version": 1}``, mode 0600, in a directory created 0700. It is
replaced atomically (temp file in the same directory, fsync, rename, fsync of
the directory), so a crash or SIGKILL at any moment leaves either the old file
or the new one, never a mix. A write that fails (disk full, read-only
directory) raises :class:`TokenStoreError` and leaves the old file untouched.

Who may have written it matters as much (ssh's StrictModes, in
:mod:`intercom_fsm.file_safety`): a file this user does not own is not used,
nor one in a directory another user owns or others can write to (such a
directory of ours is tightened, said in the log), nor one behind a symbolic
link; a parent directory that is a link is followed only when the link is
this user's or root's. The same directory rules hold before a save. The file
itself is always 0600 (looser permissions are tightened, and said). An expiry
that is not a date a computer can print (beyond the year 9999) is refused.

Reading never raises: a missing file is simply "no tokens", and a corrupt,
unreadable or untrusted one is reported in :attr:`TokenLoad.problem` (and its
tokens are *not* used) and left where it is so the operator can look at it
(the device then starts a new flow; the next successful save replaces it).

The I/O here is blocking; the runtime calls it in an executor.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import attrs

from intercom_fsm.events import StoredTokens
from intercom_fsm.file_safety import check_directory, owner_problem
from intercom_fsm.strict_json import (
    STRICT_CONVERTER,
    Seconds,
    VisibleText,
    describe_structure_error,
)

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
FORMAT_VERSION = 1
MAX_FILE_BYTES = 64 * 1024

MAX_EXPIRES_AT = 253_402_300_799.0
"""The last second of the year 9999: later is not a date (``status`` prints it)."""

STALE_TEMP_SECONDS = 60.0
"""Temp files older than this are leftovers of a killed writer and are removed
on load; younger ones may belong to a save in progress in another process."""


class TokenStoreError(Exception):
    """Saving or clearing failed. The message names the file and the OS
    problem, never a token."""


@attrs.frozen
class TokenFile:
    """The on-disk shape, parsed strictly."""

    version: Literal[1]
    access_token: VisibleText = attrs.field(repr=False)
    refresh_token: VisibleText = attrs.field(repr=False)
    expires_at: Seconds
    device_code: VisibleText = attrs.field(repr=False)


@attrs.frozen
class TokenLoad:
    """The outcome of :meth:`TokenStore.load`.

    ``problem`` is what the operator should be told: why ``tokens`` is None
    although a file was there (a problem always means the tokens are not
    used). ``tightened`` says the file's permissions were looser than 0600 and
    were set to 0600.
    """

    tokens: StoredTokens | None
    problem: str | None = None
    tightened: bool = False


class TokenStore:
    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> TokenLoad:
        """Read the stored tokens. Never raises."""
        try:
            return self._load()
        except Exception as error:  # e.g. a permission or file-system oddity
            return TokenLoad(None, problem=self._problem(f"cannot be read ({_os_text(error)})"))

    def save(self, tokens: StoredTokens) -> None:
        """Replace the file atomically; raise :class:`TokenStoreError` on failure."""
        document = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "device_code": tokens.device_code,
            "version": FORMAT_VERSION,
        }
        if not 0 <= tokens.expires_at <= MAX_EXPIRES_AT:  # NaN fails this too
            raise TokenStoreError("tokens not stored: expires_at is not a finite number or a date")
        data = json.dumps(document, indent=2, allow_nan=False).encode() + b"\n"
        self._ensure_directory()
        directory = self._path.parent
        try:
            descriptor, temp_name = tempfile.mkstemp(
                prefix=self._temp_prefix, suffix=".tmp", dir=directory
            )
        except OSError as error:
            raise self._error("cannot create a temporary file next to", error) from None
        temp_path = Path(temp_name)
        try:
            try:
                # mkstemp already creates it 0600; say so explicitly anyway.
                os.fchmod(descriptor, FILE_MODE)
                _write_all(descriptor, data)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temp_path, self._path)
        except OSError as error:
            _remove_quietly(temp_path)
            raise self._error("cannot write", error) from None
        _fsync_directory(directory)

    def clear(self) -> bool:
        """Forget the tokens. True when a file was removed."""
        try:
            self._path.unlink()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise self._error("cannot remove", error) from None
        _fsync_directory(self._path.parent)
        return True

    # --- internals -------------------------------------------------------------

    @property
    def _temp_prefix(self) -> str:
        return f".{self._path.name}."

    def _load(self) -> TokenLoad:
        directory = self._trusted_directory()
        if directory is not None:
            return TokenLoad(None, problem=self._problem(f"not used: {directory}"))
        self._remove_stale_temp_files()
        try:
            # O_NOFOLLOW: the permissions checked and tightened below must be
            # the token file's own, not those of whatever a symlink points to.
            descriptor = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return TokenLoad(None)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return TokenLoad(None, problem=self._problem("is a symbolic link; not used"))
            return TokenLoad(None, problem=self._problem(f"cannot be read ({_os_text(error)})"))
        with os.fdopen(descriptor, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return TokenLoad(None, problem=self._problem("is not a regular file"))
            foreign = owner_problem(info, "it")
            if foreign is not None:
                return TokenLoad(None, problem=self._problem(f"not used: {foreign}"))
            mode = stat.S_IMODE(info.st_mode)
            tightened = False
            if mode & ~FILE_MODE:
                try:
                    os.fchmod(file.fileno(), FILE_MODE)
                    tightened = True
                except OSError as error:
                    return TokenLoad(
                        None,
                        problem=self._problem(
                            f"not used: it has mode {mode:04o} and could not be set to 0600 "
                            f"({_os_text(error)})"
                        ),
                    )
            raw = file.read(MAX_FILE_BYTES + 1)
        tokens, problem = self._parse(raw)
        return TokenLoad(tokens, problem, tightened)

    def _trusted_directory(self) -> str | None:
        """Why the token file's directory cannot be trusted, or None (the
        notes of what was found and done are logged)."""
        check = check_directory(self._path.parent)
        for note in check.notes:
            logger.warning("token store: %s", note)
        return check.refusal

    def _parse(self, raw: bytes) -> tuple[StoredTokens | None, str | None]:
        if len(raw) > MAX_FILE_BYTES:
            return None, self._problem(f"is larger than {MAX_FILE_BYTES} bytes")
        try:
            document: Any = json.loads(raw)
        except (ValueError, RecursionError):
            return None, self._problem("is not valid JSON (corrupt or truncated)")
        if not isinstance(document, dict):
            return None, self._problem("does not hold a JSON object")
        version = document.get("version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            return None, self._problem(
                f"has an unsupported format version (expected {FORMAT_VERSION})"
            )
        try:
            parsed = STRICT_CONVERTER.structure(document, TokenFile)
        except Exception as error:
            return None, self._problem(f"is not a token file: {describe_structure_error(error)}")
        if parsed.expires_at > MAX_EXPIRES_AT:
            return None, self._problem("is not a token file: field 'expires_at' is not a date")
        tokens = StoredTokens(
            access_token=parsed.access_token,
            refresh_token=parsed.refresh_token,
            expires_at=parsed.expires_at,
            device_code=parsed.device_code,
        )
        return tokens, None

    def _ensure_directory(self) -> None:
        directory = self._path.parent
        refusal = self._trusted_directory()
        if refusal is not None:
            raise TokenStoreError(f"tokens not stored: {refusal}; the previous tokens are kept")
        if directory.is_dir():
            return
        try:
            directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            # mkdir's mode is filtered by the umask; set it exactly.
            os.chmod(directory, DIRECTORY_MODE)
        except OSError as error:
            raise self._error("cannot create the directory for", error) from None

    def _remove_stale_temp_files(self) -> None:
        try:
            candidates = list(self._path.parent.glob(f"{self._temp_prefix}*.tmp"))
        except OSError:
            return
        now = time.time()
        for candidate in candidates:
            try:
                if now - candidate.lstat().st_mtime > STALE_TEMP_SECONDS:
                    candidate.unlink()
            except OSError:
                continue

    def _problem(self, text: str) -> str:
        return f"token file {self._path} {text}"

    def _error(self, action: str, error: OSError) -> TokenStoreError:
        return TokenStoreError(
            f"{action} the token file {self._path}: {_os_text(error)}; the previous tokens are kept"
        )


def _os_text(error: BaseException) -> str:
    """The OS's words for the failure (never the data being written)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable. Some file systems cannot fsync a
    directory; the rename has happened anyway, so that is not an error."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
