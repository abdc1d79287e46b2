"""What a V4L2 device says about itself, asked through its ioctls
(``linux/videodev2.h``): whether it captures or encodes, the formats it
delivers, and, for an H.264 camera, a request for a keyframe; and, for the
descriptor FFmpeg streams from, a wait for the next picture.

Every call opens the node, asks, and closes it again: V4L2 lets several
file descriptors share a device, so asking never disturbs the one FFmpeg
reads from. A node that is missing, is not a V4L2 device (``ENOTTY``) or
refuses the question answers None or False, never raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
from collections.abc import Iterator

import attrs

VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
VIDIOC_ENUM_FMT = 0xC0405602  # _IOWR('V', 2, struct v4l2_fmtdesc), 64 bytes
VIDIOC_S_CTRL = 0xC008561C  # _IOWR('V', 28, struct v4l2_control), 8 bytes
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_DEVICE_CAPS = 0x80000000
BUF_TYPE_VIDEO_CAPTURE = 1
BUF_TYPE_VIDEO_CAPTURE_MPLANE = 9
CID_MPEG_VIDEO_FORCE_KEY_FRAME = 0x00990900 + 229
"""``V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME``: a button control; writing it makes
an encoder's next picture a keyframe (UVC H.264 cameras, the Pi's camera
stack)."""
MAX_FORMATS = 64


def fourcc(code: str) -> int:
    return int.from_bytes(code.encode("ascii"), "little")


PIXEL_FORMAT_H264 = fourcc("H264")
PIXEL_FORMAT_MJPEG = fourcc("MJPG")
PIXEL_FORMAT_JPEG = fourcc("JPEG")


@contextlib.contextmanager
def opened(node: str) -> Iterator[int | None]:
    try:
        descriptor = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        yield None
        return
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def capabilities(descriptor: int) -> int:
    """The device's own capabilities (its node's, when the driver tells them apart)."""
    answer = bytearray(104)
    fcntl.ioctl(descriptor, VIDIOC_QUERYCAP, answer)
    every, device = struct.unpack_from("=II", answer, 84)
    return int(device if every & CAP_DEVICE_CAPS else every)


def formats(descriptor: int, buffer_type: int) -> set[int]:
    """The pixel formats (fourcc codes) on one side of the device."""
    found: set[int] = set()
    for index in range(MAX_FORMATS):
        description = bytearray(struct.pack("=II", index, buffer_type) + bytes(56))
        try:
            fcntl.ioctl(descriptor, VIDIOC_ENUM_FMT, description)
        except OSError:  # EINVAL past the last one
            break
        found.add(struct.unpack_from("=I", description, 44)[0])
    return found


@attrs.frozen
class CameraFormats:
    """The compressed formats a capture device delivers."""

    h264: bool
    mjpeg: bool


def camera_formats(node: str) -> CameraFormats | None:
    """What the capture device at ``node`` delivers; None when it is not one
    (or is not there right now)."""
    with opened(node) as descriptor:
        if descriptor is None:
            return None
        try:
            if not capabilities(descriptor) & CAP_VIDEO_CAPTURE:
                return None
            offered = formats(descriptor, BUF_TYPE_VIDEO_CAPTURE)
        except OSError:
            return None
    return CameraFormats(
        h264=PIXEL_FORMAT_H264 in offered,
        mjpeg=bool({PIXEL_FORMAT_MJPEG, PIXEL_FORMAT_JPEG} & offered),
    )


def descriptors_open_on(node: str) -> list[int]:
    """This process's file descriptors open on ``node``, as ``/proc/self/fd``
    names them (an empty list where it cannot be read)."""
    target = os.path.realpath(node)
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                found.append(int(name))
        except (OSError, ValueError):
            continue  # closed meanwhile
    return found


def wait_for_picture(descriptor: int, timeout: float) -> bool:
    """Wait until the capture device streaming on ``descriptor`` has a filled
    buffer (or an error to report); False when ``timeout`` seconds passed."""
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLERR)
    try:
        return bool(poller.poll(max(0, round(timeout * 1000))))
    except OSError:
        return True  # the next read reports what is wrong


def force_keyframe(node: str) -> bool:
    """Ask the H.264 camera at ``node`` for a keyframe now; False when it
    has no such control (or is gone)."""
    with opened(node) as descriptor:
        if descriptor is None:
            return False
        try:
            control = bytearray(struct.pack("=Ii", CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1))
            fcntl.ioctl(descriptor, VIDIOC_S_CTRL, control)
        except OSError:
            return False
    return True
