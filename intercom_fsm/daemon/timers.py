"""The machine's timers on the event loop: ``ScheduleTimer`` / ``CancelTimer``."""

from __future__ import annotations

import asyncio

from intercom_fsm.daemon.inbox import Inbox
from intercom_fsm.effects import CancelTimer, ScheduleTimer, TimerKey, timer_event


class Timers:
    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._handles: dict[TimerKey, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._handles)

    def schedule(self, effect: ScheduleTimer) -> None:
        self.cancel(CancelTimer(effect.timer, effect.peer))
        event = timer_event(effect)
        key = effect.key

        def fire() -> None:
            self._handles.pop(key, None)
            self._inbox.post(event)

        self._handles[key] = asyncio.get_running_loop().call_later(effect.delay, fire)

    def cancel(self, effect: CancelTimer) -> None:
        handle = self._handles.pop(effect.key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
