"""A V4L2 camera for the tests, emulated in user space (``emulated_camera.c``
and the two files it routes to).

This machine, like most CI machines, has no ``/dev/video*`` and cannot load
kernel modules (v4l2loopback, vivid), so the daemon's V4L2 path is tested
against a device emulated in the daemon's own process: a small library,
compiled here with the system's C compiler and loaded with ``LD_PRELOAD``,
answers the libc calls FFmpeg's V4L2 input and the daemon's device questions
make on one node. Everything above libc is the real thing: FFmpeg's V4L2
demuxer with its buffer queue, the daemon's ioctls, its readers, its
passthrough and its encoders.

The camera plays recordings made here: the bench camera's stamped pictures
(:class:`bench.mjpeg_source.SyntheticCamera`), as H.264 High (no B-frames,
parameter sets before every IDR, as UVC H.264 cameras send them) or MJPEG.
"""

from __future__ import annotations

import fractions
import shutil
import struct
import subprocess
from pathlib import Path

import attrs
import av
import cv2
import numpy as np

from bench.mjpeg_source import SyntheticCamera
from bench.stamp import write_stamp
from intercom_fsm.adapters.camera.h264 import (
    NAL_PPS,
    NAL_SPS,
    join_annexb,
    nal_type,
    split_annexb,
)

SOURCES = [
    Path(__file__).with_name(name)
    for name in ("emulated_camera.c", "camera_device.c", "camera_buffers.c")
]
KEYFRAME = 1


def compiler_missing() -> str | None:
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the emulated V4L2 camera"
    if not Path("/usr/include/linux/videodev2.h").exists():
        return "no linux/videodev2.h (Debian's linux-libc-dev) to build the emulated V4L2 camera"
    return None


def build(directory: Path) -> Path:
    """The emulator compiled into ``directory``; its path."""
    library = directory / "emulated_camera.so"
    flags = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"]
    subprocess.run(
        ["cc", *flags, "-o", str(library), *map(str, SOURCES), "-ldl", "-lpthread"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return library


def _pictures(width: int, height: int, count: int) -> list[np.ndarray]:
    camera = SyntheticCamera(width, height, 15)
    pictures = []
    for sequence in range(count):
        picture = camera.render(sequence)
        write_stamp(picture, 0, sequence)
        pictures.append(picture)
    return pictures


def _write(path: Path, records: list[tuple[bytes, bool]]) -> None:
    with path.open("wb") as out:
        for data, keyframe in records:
            out.write(struct.pack("<II", len(data), KEYFRAME if keyframe else 0))
            out.write(data)


def record_h264(
    path: Path,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    gop: int,
    headers_before_every_idr: bool = True,
) -> int:
    """H.264 High, an IDR every ``gop`` pictures with its SPS and PPS in
    front (or, as some cameras send it, only in front of the first)."""
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps)
    codec.profile = "High"
    codec.gop_size = gop
    codec.max_b_frames = 0
    codec.bit_rate = 600_000
    codec.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
    }
    records: list[tuple[bytes, bool]] = []
    for index, picture in enumerate(_pictures(width, height, round(seconds * fps))):
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        records += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    records += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    if not headers_before_every_idr:
        records[1:] = [(_without_parameter_sets(data), key) for data, key in records[1:]]
    _write(path, records)
    return len(records)


def _without_parameter_sets(access_unit: bytes) -> bytes:
    units = [u for u in split_annexb(access_unit) if nal_type(u) not in (NAL_SPS, NAL_PPS)]
    return join_annexb(units)


def record_mjpeg(path: Path, width: int, height: int, fps: int, seconds: float) -> int:
    records = []
    for picture in _pictures(width, height, round(seconds * fps)):
        ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        records.append((jpeg.tobytes(), True))
    _write(path, records)
    return len(records)


def record_yuyv(path: Path, width: int, height: int, fps: int, seconds: float) -> int:
    """Raw pictures, as a camera without a compressed format sends them."""
    records = []
    for picture in _pictures(width, height, round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuyv422")
        records.append((frame.to_ndarray().tobytes(), True))
    _write(path, records)
    return len(records)


@attrs.frozen
class Recording:
    fourcc: str
    width: int
    height: int
    fps: int
    path: Path
    pictures: int
    """How many: the stamps' sequence numbers go round at this count."""

    def describe(self) -> str:
        return f"{self.fourcc}:{self.width}x{self.height}:{self.fps}:{self.path}"


@attrs.define
class EmulatedCamera:
    """One emulated camera: its node, the recordings it offers (in the order
    it lists them), and the directory through which the test watches and
    unplugs it."""

    library: Path
    node: str
    recordings: list[Recording]
    directory: Path
    keyframe_control: bool = True

    def environment(self) -> dict[str, str]:
        """What the daemon's process needs in its environment to see the camera."""
        return {
            "LD_PRELOAD": str(self.library),
            "INTERCOM_V4L2_NODE": self.node,
            "INTERCOM_V4L2_STREAMS": ";".join(r.describe() for r in self.recordings),
            "INTERCOM_V4L2_DIR": str(self.directory),
            "INTERCOM_V4L2_KEYFRAME_CONTROL": "1" if self.keyframe_control else "0",
        }

    def log(self) -> list[str]:
        path = self.directory / "log"
        return path.read_text().splitlines() if path.exists() else []

    def unplug(self) -> None:
        (self.directory / "unplugged").touch()

    def plug_in(self) -> None:
        (self.directory / "unplugged").unlink(missing_ok=True)

    def stall(self) -> None:
        (self.directory / "stalled").touch()

    def resume(self) -> None:
        (self.directory / "stalled").unlink(missing_ok=True)
