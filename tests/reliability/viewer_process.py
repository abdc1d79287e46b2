"""A MediaViewer in its own process, so a test can SIGSTOP or SIGKILL it: a
viewer that vanishes without a word (no hangup, no DTLS close, no WebSocket
close frame). Prints ``streaming`` once frames arrive.

    python -m tests.reliability.viewer_process <sandbox.json> <device_code>
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from intercom_fsm.sandbox.files import read_json_object
from intercom_fsm.sandbox.process import SandboxInfo
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback


async def main(info_path: Path, device_code: str) -> None:
    data = read_json_object(info_path)
    assert data is not None
    viewer = await MediaViewer(SandboxInfo.from_json(data), device_code).start()
    await viewer.wait_for_frames(5)
    print("streaming", flush=True)
    await asyncio.sleep(600)


if __name__ == "__main__":
    restrict_ice_to_loopback()
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
