"""At most one log line per kind of problem per interval, with a count.

Whatever arrives from outside (signaling frames relayed from viewers, their
ICE candidates) can repeat a problem thousands of times a second. A
:class:`LogLimiter` logs the first line of each kind, counts the repeats that
follow within ``interval`` seconds, and adds the count to the next line of that
kind it lets through (``"... (41 more like this in the last 10 s)"``). A repeat
it holds back is still logged at DEBUG, where an operator who asked for every
detail finds it (and a flood costs only what DEBUG costs anyway). The kinds it
remembers are bounded too: the oldest is forgotten first (its count
is logged, if any, so nothing is silently lost).

Time is injected (monotonic seconds), so tests need no sleeping.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

DEFAULT_INTERVAL = 10.0
MAX_KINDS = 128
MAX_KIND_CHARS = 120

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def kind_of(message: str) -> str:
    """A kind for a message that names none: the message with what varies
    from one repeat to the next (quoted names such as a session or a message
    type, numbers) left out, so a flood of the same problem is one kind and
    two different problems are two."""
    kind = _NUMBER.sub("#", _QUOTED.sub("'…'", message))
    return " ".join(kind.split())[:MAX_KIND_CHARS] or "problem"


@attrs.define
class _Kind:
    last_logged: float
    suppressed: int = 0


class LogLimiter:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = DEFAULT_INTERVAL,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._level = level
        self._clock = clock
        self._max_kinds = max_kinds
        self._kinds: OrderedDict[str, _Kind] = OrderedDict()

    def log(self, kind: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless a line of ``kind`` went out less than
        ``interval`` seconds ago; True when it was logged."""
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.last_logged < self._interval:
            seen.suppressed += 1
            if self._level > logging.DEBUG:
                self._logger.debug(message, *args)
            return False
        if seen is not None and seen.suppressed:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, seen.suppressed, now - seen.last_logged)
        self._kinds[kind] = _Kind(last_logged=now)
        self._kinds.move_to_end(kind)
        self._forget_oldest()
        self._logger.log(self._level, message, *args)
        return True

    def _forget_oldest(self) -> None:
        while len(self._kinds) > self._max_kinds:
            kind, forgotten = self._kinds.popitem(last=False)
            if forgotten.suppressed:
                self._logger.log(
                    self._level, "%d more %r problems were not logged", forgotten.suppressed, kind
                )
