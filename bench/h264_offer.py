"""An aiortc viewer that says which H.264 profile its decoder takes.

aiortc decodes H.264 with FFmpeg, which plays every profile a camera sends,
but it offers only Constrained Baseline (``42001f``, ``42e01f``). A browser
offers High and Main as well. To stand for such a viewer, the offer it sends
declares ``profile`` on its Constrained Baseline payload, and the answer it
gets back is read with that payload restored to what aiortc itself knows:
the device sees a real High-profile offer, and the viewer really decodes
whatever comes.
"""

from __future__ import annotations

import re

HIGH_3_1 = "64001f"
"""What Chrome offers for High profile."""
_PROFILE = re.compile(r"profile-level-id=([0-9a-fA-F]{6})")
_BASELINE_IN_AIORTC = "42e01f"


def declare_profile(offer_sdp: str, profile: str) -> str:
    """The offer with its Constrained Baseline H.264 payload declaring ``profile``."""
    return _PROFILE.sub(
        lambda m: (
            f"profile-level-id={profile}"
            if m.group(1).lower() == _BASELINE_IN_AIORTC
            else m.group(0)
        ),
        offer_sdp,
    )


def answer_as_aiortc_knows(answer_sdp: str) -> str:
    """The answer with every H.264 profile written as the one aiortc knows,
    so that aiortc accepts it (its decoder does not care)."""
    return _PROFILE.sub(f"profile-level-id={_BASELINE_IN_AIORTC}", answer_sdp)


def answered_profile(answer_sdp: str) -> str | None:
    """The ``profile-level-id`` of the answer's first video codec."""
    lines = answer_sdp.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("m=video "):
            fields = line.split()
            if len(fields) < 4:
                return None
            payload = fields[3]
            for other in lines[index + 1 :]:
                if other.startswith("m="):
                    return None
                if other.startswith(f"a=fmtp:{payload} "):
                    found = _PROFILE.search(other)
                    return found.group(1).lower() if found else None
    return None
