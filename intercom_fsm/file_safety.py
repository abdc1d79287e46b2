"""Who may have written a file the daemon trusts: ssh's StrictModes, for the
token file and ``oauth.json``.

A token file planted by someone else binds the camera to their device code;
an ``oauth.json`` another user can read gives away the client secret. So a
file is only used when this process's effective user owns it (root's own
files too, for a system-wide configuration), and its directory when nobody
else can change what is in it:

* the directory is owned by this user or by root;
* nobody but its owner can write to it; a directory of ours that others can
  write to is *tightened* (group and other write removed, and said), one of
  root's or another user's is *refused*;
* a directory that is a symbolic link is followed only when the link itself
  belongs to this user or root (systemd's ``DynamicUser`` state directories
  are such links), and then said; its target is checked as above.

Each check returns the exact reason, for the operator to fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import attrs

TRUSTED_OWNERS_EXTRA = (0,)
"""Besides this user: root."""


@attrs.frozen
class DirectoryCheck:
    refusal: str | None = None
    """Why nothing in the directory may be trusted, or None."""
    notes: tuple[str, ...] = ()
    """What was found and done (a link followed, permissions tightened)."""


def trusted_owner(uid: int) -> bool:
    return uid == os.geteuid() or uid in TRUSTED_OWNERS_EXTRA


def owner_problem(info: os.stat_result, what: str) -> str | None:
    """Why a file with ``info`` must not be used because of who owns it."""
    if info.st_uid == os.geteuid():
        return None
    return (
        f"{what} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}): "
        "another user could have written it"
    )


def check_directory(directory: Path, *, tighten: bool = True) -> DirectoryCheck:
    """The directory of a trusted file, by the rules above. Never raises."""
    notes: list[str] = []
    try:
        link = os.lstat(directory)
    except (FileNotFoundError, NotADirectoryError):  # not there yet: nothing to trust
        return DirectoryCheck()
    except OSError as error:
        return DirectoryCheck(f"directory {directory} cannot be examined ({error.strerror})")
    if stat.S_ISLNK(link.st_mode):
        if not trusted_owner(link.st_uid):
            return DirectoryCheck(
                f"directory {directory} is a symbolic link owned by uid {link.st_uid}, "
                "neither this user nor root: not followed"
            )
        notes.append(f"directory {directory} is a symbolic link to {directory.resolve()}")
    try:
        info = os.stat(directory)
    except OSError as error:
        return DirectoryCheck(f"directory {directory} cannot be examined ({error.strerror})")
    if not stat.S_ISDIR(info.st_mode):
        return DirectoryCheck(f"{directory} is not a directory")
    if not trusted_owner(info.st_uid):
        return DirectoryCheck(
            f"directory {directory} is owned by uid {info.st_uid}, neither this user "
            f"(uid {os.geteuid()}) nor root: its owner could replace the file"
        )
    mode = stat.S_IMODE(info.st_mode)
    others_write = mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not others_write:
        return DirectoryCheck(notes=tuple(notes))
    if info.st_uid != os.geteuid() or not tighten:
        return DirectoryCheck(
            f"directory {directory} has mode {mode:04o}: others can write to it "
            "and replace the file; remove their write permission (chmod go-w)"
        )
    try:
        os.chmod(directory, mode & ~others_write)
    except OSError as error:
        return DirectoryCheck(
            f"directory {directory} has mode {mode:04o} (others can write to it) and "
            f"could not be tightened ({error.strerror})"
        )
    notes.append(
        f"directory {directory} had mode {mode:04o}: others could write to it; "
        f"tightened to {mode & ~others_write:04o}"
    )
    return DirectoryCheck(notes=tuple(notes))
