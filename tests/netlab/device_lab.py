"""A door station and its viewers on links of their own: the lab that the
slow-link tests and ``bench/network.py`` share.

    with DeviceLab(workdir, ["slow", "fast"]) as door:
        door.link("slow").shape(300, towards=door.viewer_namespace("slow"))
        code = door.start_daemon()
        slow = door.watch("slow", code)

The device namespace runs the camera (the bench's time-stamping MJPEG source,
on its own loopback) and the client under test; each viewer namespace has a
direct veth link to the device, which is where media flows (every process's
ICE host candidates are restricted to its end of those links) and where the
test shapes, loses and cuts. Signaling goes over the star's uplinks to the
sandbox backend in the root namespace, which stay clean unless a test cuts
them too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.mjpeg_source import MjpegSourceProcess
from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess
from tests.loopback import TEST_ICE_ADDRESSES
from tests.netlab.lab import Link, Namespace, NetLab
from tests.netlab.scene import Star, daemon_in, device_code, star, viewer_in
from tests.netlab.viewer_process import ViewerProcess

DEVICE = "dev"


class DeviceLab:
    def __init__(
        self,
        workdir: Path,
        viewers: Sequence[str],
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15,
    ) -> None:
        self.workdir = workdir
        self.viewer_names = list(viewers)
        self.width, self.height, self.fps = width, height, fps
        self._stack = contextlib.ExitStack()
        self.lab: NetLab | None = None
        self.layout: Star | None = None
        self.sandbox: SandboxProcess | None = None
        self.camera: MjpegSourceProcess | None = None
        self.links: dict[str, Link] = {}
        self.viewers: list[ViewerProcess] = []
        self.daemon: DaemonProcess | None = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lab = self._stack.enter_context(NetLab())
        self.layout = star(self.lab, DEVICE, *self.viewer_names)
        device = self.device_namespace
        for name in self.viewer_names:
            self.links[name] = self.lab.link(device, self.viewer_namespace(name))
        self.sandbox = self._stack.enter_context(
            SandboxProcess(host=self.layout.server, auto_approve=True, device_interval=1)
        )
        self.camera = self._stack.enter_context(
            MjpegSourceProcess(self.width, self.height, self.fps, wrap=device.command)
        )
        self._stack.callback(self._stop_processes)

    @property
    def device_namespace(self) -> Namespace:
        assert self.layout is not None
        return self.layout.namespaces[DEVICE]

    def viewer_namespace(self, name: str) -> Namespace:
        assert self.layout is not None
        return self.layout.namespaces[name]

    def link(self, name: str) -> Link:
        """The direct link between the device and viewer ``name``."""
        return self.links[name]

    def uplink(self, name: str = DEVICE) -> Link:
        assert self.layout is not None
        return self.layout.uplink(name)

    @property
    def device_addresses(self) -> str:
        """The device's ends of the direct links, for its host candidates."""
        return ",".join(link.address(self.device_namespace) for link in self.links.values())

    def client_environment(self) -> dict[str, str]:
        """What a client process in the device namespace needs in its environment."""
        return {**os.environ, TEST_ICE_ADDRESSES: self.device_addresses, "PYTHONUNBUFFERED": "1"}

    def start_daemon(self, **environment: str) -> str:
        """``intercom-fsm run`` on the camera; its device code once it is online."""
        assert self.sandbox is not None and self.camera is not None
        self.daemon = daemon_in(
            self.device_namespace,
            self.sandbox.info,
            self.workdir,
            self.device_addresses,
            VIDEO_SOURCE=self.camera.url,
            VIDEO_WIDTH=str(self.width),
            VIDEO_HEIGHT=str(self.height),
            VIDEO_FPS=f"{self.fps:g}",
            LOG_LEVEL=environment.pop("LOG_LEVEL", "INFO"),
            **environment,
        )
        return device_code(self.daemon)

    def watch(self, name: str, code: str) -> ViewerProcess:
        assert self.sandbox is not None
        namespace = self.viewer_namespace(name)
        viewer = viewer_in(
            namespace,
            self.sandbox.info,
            code,
            self.link(name).address(namespace),
            self.workdir / f"viewer-{name}.log",
        )
        self.viewers.append(viewer)
        return viewer

    def on_close(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` (a client the caller started here) before the lab goes."""
        self._stack.callback(stop)

    def _stop_processes(self) -> None:
        for viewer in self.viewers:
            viewer.stop()
        if self.daemon is not None:
            self.daemon.stop()
