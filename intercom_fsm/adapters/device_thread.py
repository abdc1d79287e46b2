"""What every device thread (the camera's capture, the microphone's, the
speaker's) shares: the event loop's demand it waits on, and the way it tells
the machine that its device opened, failed or came back.

A device thread holds its device open only while there is demand, and backs
off between attempts while the device fails; both waits end at once when the
demand ends or the thread is stopped (:class:`Demand`). The machine hears a
device's story once per turn (:class:`Availability`): "opened" the first
time, then "failed" when it goes and "recovered" when it is back, however
many attempts lie between; repeated failures are debug lines only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import attrs

from intercom_fsm.events import Event


class Demand:
    """Set from the event loop, waited on by the device's thread."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._demanded = False
        self._stopping = False

    def set(self, demanded: bool) -> None:
        with self._condition:
            self._demanded = demanded
            self._condition.notify_all()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    @property
    def stopping(self) -> bool:
        with self._condition:
            return self._stopping

    def wanted(self) -> bool:
        with self._condition:
            return self._demanded and not self._stopping

    def wait(self) -> bool:
        """Until there is demand (True) or the thread is stopped (False)."""
        with self._condition:
            while not self._stopping and not self._demanded:
                self._condition.wait()
            return not self._stopping

    def sleep_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (``time.monotonic()``); False, at once, when
        the demand ends or the thread is stopped."""
        with self._condition:
            while self._demanded and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._condition.wait(remaining)
            return False


@attrs.frozen
class DeviceEvents:
    """A device's three events for the machine."""

    opened: Callable[[str], Event]
    failed: Callable[[str], Event]
    recovered: Callable[[], Event]


class Availability:
    """A device's ups and downs, told to the machine once each (see above).
    Nothing is told once the thread is stopping: the machine closed it."""

    def __init__(
        self,
        kind: str,
        events: DeviceEvents,
        emit: Callable[[Event], None],
        demand: Demand,
        log: logging.Logger,
        count_failure: Callable[[], None],
    ) -> None:
        self._kind = kind
        self._events = events
        self._emit = emit
        self._demand = demand
        self._log = log
        self._count_failure = count_failure
        """Counts a new failure before the machine hears of it."""
        self._announced = False
        self._failing = False

    @property
    def failing(self) -> bool:
        """Failed and not back since."""
        return self._failing

    def opened(self, description: str, recovered: str | None = None) -> None:
        """The device is open: ``description`` says what opened, the first
        time; ``recovered`` (else ``description``) names it when it is back
        after a failure."""
        if not self._announced:
            self._announced = True
            self._failing = False
            self._log.info("%s opened: %s", self._kind, description)
            self._tell(self._events.opened(description))
        elif self._failing:
            self._failing = False
            self._log.info("%s recovered: %s", self._kind, recovered or description)
            self._tell(self._events.recovered())

    def failed(self, reason: str, *, unavailable: str = "unavailable") -> None:
        """The device failed: told and counted when it is a new failure."""
        if self._failing:
            self._log.debug("%s still %s: %s", self._kind, unavailable, reason)
            return
        self._failing = True
        self._count_failure()
        # The operator's line comes from the machine (it reports the event).
        self._log.debug("%s %s: %s", self._kind, unavailable, reason)
        self._tell(self._events.failed(reason))

    def _tell(self, event: Event) -> None:
        if not self._demand.stopping:
            self._emit(event)
