"""A synthetic H.264 IP camera for the harness and the tests: the MJPEG bench
camera (time-stamped pictures) re-encoded by GStreamer's RTSP server
(``bench/rtsp_server.py``), both as child processes.

The RTSP server runs with the system's Python (``/usr/bin/python3``), which
has the GStreamer bindings; the project's virtualenv does not.
:func:`rtsp_server_missing` says what is missing on a machine without them.

    with RtspSourceProcess(640, 480, 15) as camera:
        camera.url          # rtsp://127.0.0.1:<port>/stamp
        camera.transports() # the Transport header of every SETUP so far
        camera.pause()      # SIGSTOP: a camera that hangs with its sockets open
        camera.resume()
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from bench.child import ReadyChild
from bench.mjpeg_source import MjpegSourceProcess

SYSTEM_PYTHON: Final = "/usr/bin/python3"
SERVER_SCRIPT: Final = Path(__file__).with_name("rtsp_server.py")
DEBIAN_PACKAGES: Final = (
    "python3-gi",
    "gir1.2-gst-rtsp-server-1.0",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
)
GOP_SECONDS: Final = 2.0
_CHECK = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing = [e for e in ('x264enc', 'h264parse', 'rtph264pay', 'souphttpsrc',"
    " 'multipartdemux', 'jpegdec', 'videoconvert') if Gst.ElementFactory.find(e) is None];"
    "print(' '.join(missing))"
)


def rtsp_server_missing() -> str | None:
    """Why the RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "the GStreamer check timed out"
    if result.returncode != 0:
        return f"GStreamer's RTSP server bindings are missing (Debian: {' '.join(DEBIAN_PACKAGES)})"
    if result.stdout.strip():
        return f"GStreamer elements missing: {result.stdout.strip()}"
    return None


def default_kbps(width: int, height: int, fps: float) -> int:
    """What an IP camera would send: about 0.1 bit per pixel per picture."""
    return max(200, round(0.1 * width * height * fps / 1000))


class RtspSourceProcess:
    READY_TIMEOUT_S: Final = 20.0

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 15.0,
        gop_seconds: float = GOP_SECONDS,
        inband_parameter_sets: bool = False,
        *,
        bframes: int = 0,
        codec: str = "h264",
        sign_in: tuple[str, str, str] | None = None,
    ) -> None:
        """``sign_in``: (user, password, ``basic`` or ``digest``) that clients
        must give; ``codec`` ``mjpeg`` sends the JPEGs as they are."""
        self.width, self.height, self.fps = width, height, fps
        self.gop_seconds = gop_seconds
        self._inband = inband_parameter_sets
        self._bframes = bframes
        self._codec = codec
        self._sign_in = sign_in
        self._mjpeg = MjpegSourceProcess(width, height, fps)
        self._server: ReadyChild | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the RTSP source has not been started")
        return self._url

    @property
    def pid(self) -> int:
        process = self._server.process if self._server is not None else None
        if process is None:
            raise RuntimeError("the RTSP source has not been started")
        return process.pid

    def url_with(self, user: str, password: str) -> str:
        """:attr:`url` with credentials in it, as an operator writes them."""
        from urllib.parse import quote

        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"

    def transports(self) -> list[str]:
        """The Transport header of every SETUP a client sent, in order."""
        lines = self._server.lines() if self._server is not None else []
        return [line.removeprefix("SETUP ") for line in lines if line.startswith("SETUP ")]

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the RTSP source was already started")
        self._mjpeg.start()
        command = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            f"--mjpeg={self._mjpeg.url}",
            f"--fps={self.fps:g}",
            f"--gop={self.gop_seconds:g}",
            f"--kbps={default_kbps(self.width, self.height, self.fps)}",
        ]
        if self._inband:
            command.append("--inband")
        if self._bframes:
            command.append(f"--bframes={self._bframes}")
        if self._codec != "h264":
            command.append(f"--codec={self._codec}")
        if self._sign_in is not None:
            user, password, method = self._sign_in
            command += [f"--user={user}", f"--password={password}", f"--auth={method}"]
        self._server = ReadyChild("the RTSP server", command)
        try:
            self._url = self._server.start(self.READY_TIMEOUT_S)
        except BaseException:
            self._mjpeg.stop()
            raise
        return self

    def pause(self) -> None:
        """The camera hangs: its process stops, its sockets stay open."""
        if self._server is not None:
            self._server.signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._server is not None:
            self._server.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._mjpeg.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()
