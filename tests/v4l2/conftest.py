"""Fixtures for the V4L2 camera tests: the emulated camera (``emulator.py``)
built once, its recordings, the sandbox backend, and the daemon as a
subprocess with the camera in its environment.

Without a C compiler and ``linux/videodev2.h`` the tests skip, and under
``CI=true`` they fail: the Makefile's ``browser`` target installs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import sandbox, token_file
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.requirements import missing

from . import emulator

__all__ = ["sandbox", "token_file"]

NODE = "/dev/video42"
"""The emulated camera's node: it need not exist, the emulator answers for it."""
H264_GOP = 60
"""Four seconds at 15 fps: longer than a camera should be set to, so that a
first picture well within it shows the camera was asked for a keyframe."""


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = emulator.compiler_missing()
    if reason is not None:
        missing("the V4L2 camera tests", reason)
    return emulator.build(tmp_path_factory.mktemp("emulator"))


@pytest.fixture(scope="session")
def h264_recording(tmp_path_factory: pytest.TempPathFactory) -> emulator.Recording:
    path = tmp_path_factory.mktemp("recordings") / "h264-1280x720.rec"
    pictures = emulator.record_h264(path, 1280, 720, 15, seconds=12, gop=H264_GOP)
    return emulator.Recording("H264", 1280, 720, 15, path, pictures)


@pytest.fixture(scope="session")
def h264_headers_once_recording(tmp_path_factory: pytest.TempPathFactory) -> emulator.Recording:
    """The same with the SPS and PPS only in front of the first IDR."""
    path = tmp_path_factory.mktemp("recordings") / "h264-1280x720-headers-once.rec"
    pictures = emulator.record_h264(
        path, 1280, 720, 15, seconds=12, gop=H264_GOP, headers_before_every_idr=False
    )
    return emulator.Recording("H264", 1280, 720, 15, path, pictures)


@pytest.fixture(scope="session")
def mjpeg_recording(tmp_path_factory: pytest.TempPathFactory) -> emulator.Recording:
    path = tmp_path_factory.mktemp("recordings") / "mjpeg-640x480.rec"
    pictures = emulator.record_mjpeg(path, 640, 480, 15, seconds=4)
    return emulator.Recording("MJPG", 640, 480, 15, path, pictures)


@pytest.fixture(scope="session")
def yuyv_recording(tmp_path_factory: pytest.TempPathFactory) -> emulator.Recording:
    path = tmp_path_factory.mktemp("recordings") / "yuyv-640x480.rec"
    pictures = emulator.record_yuyv(path, 640, 480, 15, seconds=2)
    return emulator.Recording("YUYV", 640, 480, 15, path, pictures)


@pytest.fixture
def make_camera(library: Path, tmp_path: Path) -> Callable[..., emulator.EmulatedCamera]:
    def make(
        *recordings: emulator.Recording, keyframe_control: bool = True
    ) -> emulator.EmulatedCamera:
        directory = tmp_path / "camera"
        directory.mkdir()
        return emulator.EmulatedCamera(library, NODE, list(recordings), directory, keyframe_control)

    return make


@pytest.fixture
def start_daemon(
    sandbox: SandboxProcess, token_file: Path, tmp_path: Path
) -> Iterator[Callable[..., DaemonProcess]]:
    """Starts the daemon reading ``camera`` (extra settings as keywords)."""
    started: list[DaemonProcess] = []

    def start(camera: emulator.EmulatedCamera, **settings: str) -> DaemonProcess:
        environ = daemon_environment(
            sandbox.info,
            token_file,
            VIDEO_SOURCE=camera.node,
            VIDEO_WIDTH="640",
            VIDEO_HEIGHT="480",
            VIDEO_FPS="15",
            **camera.environment(),
            **settings,
        )
        process = DaemonProcess(environ, tmp_path / "daemon.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
