"""OpenCV, loaded once and set up for a small board.

OpenCV shares each conversion out to a pool of threads that busy-wait
(``sched_yield``) for the next one. At a door camera's sizes a conversion
runs faster on the calling thread than it is shared out, and the waiting
cost an idle daemon drawing its test pattern about 1 % of a core (measured
with ``perf``: most of its samples were in ``sched_yield``). One thread: the
capture thread that asks.
"""

from __future__ import annotations

import cv2 as cv2

cv2.setNumThreads(1)

__all__ = ["cv2"]
