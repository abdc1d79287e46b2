"""The daemon's threads carry their names into the kernel, where ``top -H``
and ``ps -L`` read them."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from intercom_fsm.adapters.audio.worker import DeviceWorker
from intercom_fsm.adapters.camera import Camera, CameraSettings
from intercom_fsm.adapters.camera.capture import THREAD_NAME as CAPTURE_THREAD
from intercom_fsm.adapters.camera.encoder_parts import EncoderThread
from intercom_fsm.adapters.thread_names import name_native_thread, native_name
from intercom_fsm.events import MicrophoneFailed, MicrophoneOpened, MicrophoneRecovered
from intercom_fsm.machine.backoff import BackoffPolicy
from tests.camera.conftest import EventRecorder

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def kernel_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def own_kernel_name() -> str:
    return kernel_name(threading.get_native_id())


def kernel_name_of(python_name: str, wanted: str) -> str:
    """The kernel's name of the live thread called ``python_name``, once it
    is ``wanted`` or after 5 s (the thread names itself when it starts)."""
    (thread,) = [t for t in threading.enumerate() if t.name == python_name]
    assert thread.native_id is not None
    deadline = time.monotonic() + 5
    while kernel_name(thread.native_id) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return kernel_name(thread.native_id)


def test_native_names_drop_the_common_prefix_and_fit_the_kernel() -> None:
    assert native_name("intercom-camera-capture") == "camera-capture"
    assert native_name("intercom-vp8-high_0") == "vp8-high_0"
    assert native_name("intercom-microphone") == "microphone"
    assert native_name("a-very-long-thread-name") == "a-very-long-thr"
    assert len(native_name("intercom-" + "é" * 20).encode()) <= 15  # never half a character


def test_a_thread_that_names_itself_shows_the_name_in_the_kernel() -> None:
    seen: list[str] = []

    def run() -> None:
        before = own_kernel_name()
        named = name_native_thread()
        seen.extend([before, own_kernel_name(), str(named)])

    thread = threading.Thread(target=run, name="intercom-example")
    thread.start()
    thread.join(5)
    before, after, named = seen
    assert (after, named) == ("example", "True")
    assert before != after


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_an_encoder_thread_is_named_after_its_encoder() -> None:
    encoder = EncoderThread("intercom-vp8-high")
    try:
        assert await encoder.run(own_kernel_name) == "vp8-high_0"
    finally:
        encoder.close()


@pytest.mark.asyncio
@pytest.mark.timeout(15)
async def test_the_camera_capture_thread_is_named() -> None:
    camera = Camera(CameraSettings(fps=10), EventRecorder())
    await camera.open()
    try:
        assert kernel_name_of(CAPTURE_THREAD, "camera-capture") == "camera-capture"
    finally:
        await camera.close()


class IdleMicrophone(DeviceWorker[None]):
    """A device thread that is never asked for its device."""

    kind = "microphone"
    opened_event = MicrophoneOpened
    failed_event = MicrophoneFailed
    recovered_event = MicrophoneRecovered


def test_an_audio_device_thread_is_named_after_its_device() -> None:
    worker = IdleMicrophone("test", lambda event: None, lambda: 0.5, BackoffPolicy())
    worker.start()
    try:
        assert kernel_name_of("intercom-microphone", "microphone") == "microphone"
    finally:
        worker.stop()
    deadline = time.monotonic() + 5
    while worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.is_alive()
