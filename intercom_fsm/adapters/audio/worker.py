"""A device thread that survives its device: the part the microphone and the
speaker share.

The thread holds the device open while there is demand (the device was
opened by the machine and someone listens or talks, or it is warming up for
the first one) and releases it otherwise. When the device cannot be opened
or fails while in use, the thread reports the failure once, waits an
exponential backoff with full jitter, and opens it again; success reports
the "opened" event the first time and the "recovered" event after a
failure (:mod:`intercom_fsm.adapters.device_thread`, as the camera's capture
does). Events go to ``emit`` on this thread, which hands them to the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from intercom_fsm.adapters.audio.alsa import AlsaError
from intercom_fsm.adapters.device_thread import Availability, Demand, DeviceEvents
from intercom_fsm.adapters.thread_names import name_native_thread
from intercom_fsm.events import Event
from intercom_fsm.machine.backoff import Backoff, BackoffPolicy

logger = logging.getLogger(__name__)

STABLE_AFTER = 30.0
Device = TypeVar("Device")


class DeviceWorker(Generic[Device]):
    """Subclasses open the device and serve it until it fails or the demand ends."""

    kind = "device"
    opened_event: Callable[[str], Event]
    failed_event: Callable[[str], Event]
    recovered_event: Callable[[], Event]

    def __init__(
        self,
        description: str,
        emit: Callable[[Event], None],
        random: Callable[[], float],
        backoff: BackoffPolicy,
    ) -> None:
        self.description = description
        self._random = random
        self._backoff = Backoff(BackoffPolicy(backoff.base, backoff.cap, STABLE_AFTER))
        self._demand = Demand()
        cls = type(self)
        events = DeviceEvents(cls.opened_event, cls.failed_event, cls.recovered_event)
        self._availability = Availability(
            self.kind, events, emit, self._demand, logger, self._count_failure
        )
        self.online = False
        """Opened and not failed since (like the camera's)."""
        self.serving = False
        """The device is open right now."""
        self.failures = 0
        self.opens = 0
        self._thread = threading.Thread(target=self._run, name=f"intercom-{self.kind}", daemon=True)

    # --- control, from the event loop ------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def set_demand(self, demanded: bool) -> None:
        self._demand.set(demanded)

    def stop(self) -> None:
        self._demand.stop()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # --- for subclasses ------------------------------------------------------------------

    def open_device(self) -> Device:
        raise NotImplementedError

    def serve(self, device: Device) -> None:
        """Use the device while :meth:`wanted`; raise :class:`AlsaError` when it fails."""
        raise NotImplementedError

    def close_device(self, device: Device) -> None:
        raise NotImplementedError

    def wanted(self) -> bool:
        return self._demand.wanted()

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        name_native_thread()
        try:
            while self._demand.wait():
                self._serve_while_wanted()
        except Exception:
            logger.exception("the %s thread stopped on an unexpected error", self.kind)
            self._fail("its thread stopped on an unexpected error")
        finally:
            self.online = False

    def _serve_while_wanted(self) -> None:
        while self.wanted():
            try:
                device = self.open_device()
            except AlsaError as error:
                self._fail(str(error))
                if not self._back_off():
                    return
                continue
            self._opened()
            self.serving = True
            try:
                self.serve(device)
            except AlsaError as error:
                self._fail(str(error))
            finally:
                self.serving = False
                self.close_device(device)
            if self.wanted() and self._availability.failing and not self._back_off():
                return

    def _opened(self) -> None:
        self._backoff.succeeded(time.monotonic())
        self.opens += 1
        self.online = True
        self._availability.opened(self.description)

    def _fail(self, reason: str) -> None:
        self.online = False
        self._availability.failed(reason)

    def _count_failure(self) -> None:
        self.failures += 1

    def _back_off(self) -> bool:
        """Wait the next backoff delay; False, at once, when the demand ends
        or the worker stops."""
        now = time.monotonic()
        return self._demand.sleep_until(now + self._backoff.next_delay(now, self._random))
