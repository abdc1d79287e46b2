"""Telling the person where to approve the device (the ShowUserCode effect).

The message names the verification URL, shows the user code large enough to
read from across a room (spaced out, in a box), the link with the code filled
in when the server gave one, and how long the code stays valid. On an
interactive terminal a QR code of that link follows, so a phone can open it.

Every server-supplied string is reduced to printable characters before it is
written: a terminal must not receive escape sequences from the network.
"""

from __future__ import annotations

import io
import math
from typing import TextIO

import segno

from intercom_fsm.effects import ShowUserCode


def show_user_code(effect: ShowUserCode, stream: TextIO, interactive: bool) -> None:
    """Write the sign-in instructions (and a QR code when ``interactive``)."""
    stream.write(format_user_code_message(effect))
    link = _printable(effect.verification_uri_complete or "")
    if interactive and link:
        qr_code = render_qr_code(link, stream)
        if qr_code:
            stream.write("Or scan this code with a phone:\n\n")
            stream.write(qr_code)
            stream.write("\n")
    stream.flush()


def format_user_code_message(effect: ShowUserCode) -> str:
    uri = _printable(effect.verification_uri)
    code = _printable(effect.user_code)
    spaced = " ".join(code)
    width = len(spaced) + 8
    lines = [
        "",
        "To connect this camera, open this page in a browser:",
        "",
        f"    {uri}",
        "",
        "and enter the code:",
        "",
        "    +" + "-" * width + "+",
        "    |" + " " * width + "|",
        "    |    " + spaced + "    |",
        "    |" + " " * width + "|",
        "    +" + "-" * width + "+",
        "",
    ]
    complete = _printable(effect.verification_uri_complete or "")
    if complete:
        lines += ["Or open this link, which has the code filled in:", "", f"    {complete}", ""]
    lines += [f"The code expires in {describe_minutes(effect.expires_in)}.", ""]
    return "\n".join(lines) + "\n"


def describe_minutes(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds <= 0:
        return "moments"
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def render_qr_code(data: str, stream: TextIO) -> str:
    """The QR code as terminal text; empty when it cannot be drawn.

    The compact form (half blocks, two modules per character) needs a stream
    that can encode them; otherwise segno's ANSI-colour form is used.
    """
    try:
        qr = segno.make(data, micro=False)
        out = io.StringIO()
        compact = _can_encode(stream, "\u2580\u2584\u2588")
        qr.terminal(out=out, compact=compact, border=2)
    except Exception:  # a code too long for a QR symbol must not break the message
        return ""
    return out.getvalue()


def _can_encode(stream: TextIO, sample: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        sample.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _printable(text: str) -> str:
    """Only printable characters, no escape sequences, no line breaks."""
    return "".join(char for char in text if char.isprintable())
