"""The daemon's threads under their own names in ``top -H``, ``ps -L`` and ``/proc``.

Python (before 3.14) leaves every thread of a process under the name of the
process, so an operator who sees one thread of the door station take a core
cannot tell the camera's from an encoder's. Each thread the daemon starts
calls :func:`name_native_thread` first: the kernel's name for it becomes its
Python name, without the ``intercom-`` all of them start with, cut to the
kernel's 15 bytes (``intercom-camera-capture`` is ``camera-capture``,
``intercom-vp8-high_0`` is ``vp8-high_0``).
"""

from __future__ import annotations

import ctypes
import sys
import threading

PREFIX = "intercom-"
KERNEL_NAME_BYTES = 15
"""What the kernel keeps of a thread's name (16 with the closing NUL)."""
_PR_SET_NAME = 15


def native_name(python_name: str) -> str:
    """The kernel's name for a thread called ``python_name``."""
    cut = python_name.removeprefix(PREFIX).encode()[:KERNEL_NAME_BYTES]
    return cut.decode(errors="ignore")


def name_native_thread() -> bool:
    """Give the calling thread its :func:`native_name`; False where the
    system cannot (not Linux, or the call refused). A name is a convenience:
    a thread that cannot have one runs on as it is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    name = native_name(threading.current_thread().name).encode()
    return int(libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)) == 0
