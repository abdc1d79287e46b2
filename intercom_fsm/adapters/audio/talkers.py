"""A talking viewer's sound, read off aiortc into its playout buffer.

aiortc decodes the viewer's Opus into frames (stereo, 48 kHz, 20 ms) on the
event loop's track; a task per talker takes each one as it comes, converts
it to the adapter's mono 48 kHz (any rate or layout a codec gives), and
pushes it into the viewer's :class:`PlayoutBuffer`. Reading as fast as
frames arrive keeps aiortc's own queue empty: the only buffering between the
network and the speaker is ours, and it is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from intercom_fsm.adapters.audio.blocks import RATE
from intercom_fsm.adapters.audio.playout import PlayoutBuffer

logger = logging.getLogger(__name__)


class Talker:
    def __init__(
        self,
        track: MediaStreamTrack,
        buffer: PlayoutBuffer,
        on_end: Callable[[Talker], None],
        playing: Callable[[], bool] = lambda: True,
    ) -> None:
        """While ``playing()`` is false (the speaker is closed or away) the
        sound is read and dropped."""
        self.track = track
        self.buffer = buffer
        self._playing = playing
        self._on_end = on_end
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="intercom-talker")

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                if not self._playing():
                    continue
                for converted in self._resampler.resample(frame):
                    self.buffer.push(converted.to_ndarray().reshape(-1).astype(np.int16))
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reading a viewer's sound failed")
        finally:
            self._on_end(self)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
