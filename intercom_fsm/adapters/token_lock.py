"""One process at a time on a token file.

Two daemons, or ``login``/``logout`` beside ``run``, would refresh with the
same refresh token (a server with reuse detection then revokes the whole
grant, RFC 9700 section 4.14.2) and remove what the other just wrote. So each
holds an exclusive ``flock`` on ``.<token file>.lock`` beside the token file
for as long as it runs, and writes its pid into it; a second one is told which
process holds the lock and stops (:class:`TokenFileLocked`).

The kernel drops the lock when the process ends, however it ends, so a
SIGKILLed daemon leaves no stale lock (the file itself stays, harmless).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from intercom_fsm.file_safety import check_directory

LOCK_MODE = 0o600
DIRECTORY_MODE = 0o700


class TokenFileLocked(Exception):
    """Another process holds the lock; ``holder`` is its pid when it said."""

    def __init__(self, token_file: Path, holder: int | None) -> None:
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(
            f"{who} already uses the token file {token_file} (an intercom-fsm run, login "
            "or logout): only one may, or they would spend each other's refresh tokens"
        )
        self.holder = holder


class TokenLockError(Exception):
    """The lock file cannot be made or locked (a read-only directory, ...)."""


class TokenLock:
    def __init__(self, token_file: Path) -> None:
        self._token_file = Path(token_file)
        self.path = self._token_file.parent / f".{self._token_file.name}.lock"
        self._descriptor: int | None = None

    def acquire(self) -> TokenLock:
        """Take the lock or raise :class:`TokenFileLocked` / :class:`TokenLockError`."""
        directory = self.path.parent
        try:
            directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        except OSError as error:
            raise TokenLockError(f"cannot create {directory}: {error.strerror}") from None
        refusal = check_directory(directory).refusal
        if refusal is not None:
            raise TokenLockError(refusal)
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, LOCK_MODE)
        except OSError as error:
            raise TokenLockError(f"cannot open {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _pid_in(descriptor)
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise TokenFileLocked(self._token_file, holder) from None
            raise TokenLockError(f"cannot lock {self.path}: {error.strerror}") from None
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # closing drops the flock

    def __enter__(self) -> TokenLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _pid_in(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
