"""Fixtures of the audio tests: one real sound server for the session (see
:mod:`tests.audio.sound_server`), an event recorder, and waiting helpers.

Without PulseAudio the tests skip, except under ``CI=true`` where they fail:
``make test`` installs it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import attrs
import pytest

from intercom_fsm.events import Event
from tests.audio.sound_server import MIC_SINK, SPEAKER_SINK, SoundServer, SoundServerMissing
from tests.requirements import missing


@pytest.fixture(scope="session")
def sound_server() -> Iterator[SoundServer]:
    server = SoundServer()
    try:
        server.start()
    except SoundServerMissing as error:
        server.stop()
        missing("the sound server", str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sound(sound_server: SoundServer) -> Iterator[SoundServer]:
    """The session's server, with both devices present again after the test."""
    yield sound_server
    sound_server.stop_children()
    for sink in (MIC_SINK, SPEAKER_SINK):
        if sink not in sound_server.modules:
            sound_server.add_sink(sink)
    sound_server.remove_extra_modules()


@attrs.define
class EventRecorder:
    events: list[Event] = attrs.field(factory=list)
    threads: set[int] = attrs.field(factory=set)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.threads.add(threading.get_ident())

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]


async def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.01)
