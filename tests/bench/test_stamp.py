"""The bench's capture-time stamp, and the synthetic MJPEG camera that draws it.

The stamp has to come back bit-exact after everything the bench puts it
through: JPEG, and aiortc's own VP8 and H.264 encoders at their default
bitrate, in key frames and in P-frames over a moving picture. Anything that is
not a stamp must read as ``None``, never as a plausible wrong time.
"""

from __future__ import annotations

import fractions
import itertools
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.mjpeg_source import MjpegSourceProcess, SyntheticCamera
from bench.stamp import (
    STAMP_BITS,
    Stamp,
    cell_size,
    latency_ms,
    read_stamp,
    stamp_region,
    write_stamp,
)

SIZES = [(320, 240), (640, 480), (1280, 720)]
WALL_MS = 1_732_520_000_123  # a real wall clock: wider than 32 bits
Image = npt.NDArray[np.uint8]


def grey(image: Image) -> Image:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def decode_grey(jpeg: bytes | npt.NDArray[np.uint8]) -> Image:
    """The luma of a JPEG, as a viewer decoding it would see it."""
    buffer = np.frombuffer(jpeg, np.uint8) if isinstance(jpeg, bytes) else jpeg
    return np.asarray(cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE), dtype=np.uint8)


def expected(wall_ms: int, sequence: int) -> Stamp:
    return Stamp(wall_ms=wall_ms % 2**32, sequence=sequence % 2**16)


def stamped_frames(width: int, height: int, count: int) -> Iterator[tuple[Image, Stamp]]:
    """The synthetic camera's moving picture, stamped as it stamps it."""
    camera = SyntheticCamera(width, height, fps=15)
    for index in range(count):
        image = camera.render(index)
        wall_ms, sequence = WALL_MS + 67 * index, 65_530 + index  # the sequence wraps
        write_stamp(image, wall_ms, sequence)
        yield image, expected(wall_ms, sequence)


def test_layout() -> None:
    assert STAMP_BITS == 56
    assert cell_size(320) == cell_size(640) == 16
    assert cell_size(1280) == 32
    for width, height in SIZES:
        cell = cell_size(width)
        assert cell % 16 == 0
        region_width, region_height = stamp_region(width)
        assert region_width % 16 == 0 and region_height % 16 == 0
        assert region_width * region_height <= width * height / 2
    assert stamp_region(320) == (256, 96)  # 14×4 cells of 16 px plus a 16 px border


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_round_trip_raw(width: int, height: int) -> None:
    for image, stamp in stamped_frames(width, height, 8):
        assert read_stamp(grey(image)) == stamp


def test_round_trip_in_a_padded_plane() -> None:
    """Decoders pad rows to a line size; the reader takes the cut-back view."""
    image, stamp = next(stamped_frames(640, 480, 1))
    padded = np.zeros((480, 704), np.uint8)
    padded[:, :640] = grey(image)
    assert read_stamp(padded[:, :640]) == stamp


def test_extremes() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    for wall_ms, sequence in [(0, 0), (2**32 - 1, 2**16 - 1), (2**32, 2**16), (-1, -1)]:
        write_stamp(image, wall_ms, sequence)
        assert read_stamp(grey(image)) == expected(wall_ms, sequence)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_round_trip_jpeg(width: int, height: int) -> None:
    for image, stamp in stamped_frames(width, height, 4):
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 50])
        assert ok
        assert read_stamp(decode_grey(jpeg)) == stamp


@pytest.mark.parametrize("mime_type", ["video/VP8", "video/H264"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_round_trip_aiortc_codec(mime_type: str, width: int, height: int) -> None:
    """Encode with aiortc's encoder, depayload the RTP payloads as its receiver
    does, decode with its decoder: every frame, key or not, keeps its stamp."""
    codec = RTCRtpCodecParameters(mimeType=mime_type, clockRate=90000)
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    count = 12
    decoded: list[Stamp | None] = []
    sent: list[Stamp] = []
    for index, (image, stamp) in enumerate(stamped_frames(width, height, count)):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = index * 6000  # 15 fps
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame)
        assert payloads
        data = b"".join(depayload(codec, payload) for payload in payloads)
        for picture in decoder.decode(JitterFrame(data=data, timestamp=timestamp)):
            assert isinstance(picture, av.VideoFrame)
            assert (picture.width, picture.height) == (width, height)
            decoded.append(read_stamp(np.asarray(picture.to_ndarray(format="gray"), np.uint8)))
        sent.append(stamp)
    # Both encoders run without lookahead in aiortc: one picture out per frame in.
    assert decoded == sent


def corrupted(kind: str, image: Image) -> Image:
    width, height = stamp_region(image.shape[1])
    region = image[:height, :width]
    if kind == "grey":
        region[...] = 128
    elif kind == "noise":
        region[...] = np.random.default_rng(1).integers(0, 256, region.shape, dtype=np.uint8)
    elif kind == "black":
        region[...] = 0
    elif kind == "white":
        region[...] = 255
    elif kind == "blurred":
        region[...] = cv2.GaussianBlur(region, (0, 0), 6)
    elif kind == "bit flipped":
        cell = cell_size(image.shape[1])
        centre = region[cell + cell // 2, 3 * cell + cell // 2]
        region[cell : 2 * cell, 3 * cell : 4 * cell] = 255 - centre
    return image


@pytest.mark.parametrize("kind", ["grey", "noise", "black", "white", "blurred", "bit flipped"])
def test_corrupted_reads_as_none(kind: str) -> None:
    image, _ = next(stamped_frames(640, 480, 1))
    assert read_stamp(grey(corrupted(kind, image))) is None


def test_noise_never_reads_as_a_stamp() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        luma = rng.integers(0, 256, (240, 320), dtype=np.uint8)
        assert read_stamp(luma) is None


def test_unstamped_or_small_pictures() -> None:
    camera = SyntheticCamera(640, 480, fps=15)
    assert read_stamp(grey(camera.render(3))) is None
    assert read_stamp(np.zeros((64, 200), np.uint8)) is None
    with pytest.raises(ValueError, match="cannot hold"):
        write_stamp(np.zeros((64, 200, 3), np.uint8), 1, 1)
    with pytest.raises(ValueError, match="2-D"):
        read_stamp(np.zeros((240, 320, 3), np.uint8))


def test_latency_ms() -> None:
    assert latency_ms(1_000, 1_250) == 250
    # The stamp keeps the low 32 bits; "now" is the full wall clock.
    now = WALL_MS + 40
    assert latency_ms(WALL_MS % 2**32, now) == 40
    # Across the wrap: stamped just before it, read just after.
    assert latency_ms(2**32 - 10, 2**32 + 5) == 15
    assert latency_ms(2**32 - 10, 5) == 15
    # A stamp slightly in the future (clock skew) is a small negative number.
    assert latency_ms(5, 2**32 - 10) == -15
    assert latency_ms(1_250, 1_000) == -250


def read_frames(url: str, count: int, within: float) -> list[tuple[Stamp | None, int]]:
    """``count`` frames from the stream through OpenCV's FFmpeg backend: the
    stamp of each and the wall clock (ms) when it came out of ``read()``."""
    capture = cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000],
    )
    frames: list[tuple[Stamp | None, int]] = []
    deadline = time.monotonic() + within
    try:
        assert capture.isOpened(), f"OpenCV could not open {url}"
        while len(frames) < count and time.monotonic() < deadline:
            ok, image = capture.read()
            now_ms = time.time_ns() // 1_000_000
            assert ok, "the stream ended or timed out"
            frames.append((read_stamp(grey(np.asarray(image, np.uint8))), now_ms))
    finally:
        capture.release()
    return frames


@pytest.mark.timeout(60)
def test_mjpeg_source_end_to_end() -> None:
    source = MjpegSourceProcess(320, 240, 10)
    try:
        source.start()
        assert source.url.startswith("http://127.0.0.1:")
        assert source.url.endswith("/stream.mjpg")
        frames = read_frames(source.url, 10, within=15.0)
        assert len(frames) == 10
        stamps: list[Stamp] = []
        for stamp, now_ms in frames:
            assert stamp is not None
            assert 0 <= latency_ms(stamp.wall_ms, now_ms) < 1000
            stamps.append(stamp)
        sequences = [s.sequence for s in stamps]
        assert all(b > a for a, b in itertools.pairwise(sequences)), sequences
        # At 10 fps frames are made ~100 ms apart (a slow reader may skip some).
        for a, b in itertools.pairwise(stamps):
            assert 50 <= (b.wall_ms - a.wall_ms) / (b.sequence - a.sequence) <= 150

        with urllib.request.urlopen(source.snapshot_url, timeout=5) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            jpeg = response.read()
        snapshot = read_stamp(decode_grey(jpeg))
        assert snapshot is not None
        assert snapshot.sequence >= sequences[-1]
        assert 0 <= latency_ms(snapshot.wall_ms, time.time_ns() // 1_000_000) < 1000

        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(source.url.replace("stream.mjpg", "nothing"), timeout=5)
        assert missing.value.code == 404
        missing.value.close()

        pid = source.pid
        started = time.monotonic()
        source.stop()
        assert time.monotonic() - started < 1.0, "SIGTERM should end the source promptly"
        assert source.returncode == 0, f"process {pid} exited with {source.returncode}"
    finally:
        source.stop()
    assert source.returncode is not None


def test_mjpeg_source_survives_clients_that_leave(capfd: pytest.CaptureFixture[str]) -> None:
    """Clients that disconnect mid-stream end their threads quietly."""
    with MjpegSourceProcess(320, 240, 30) as source:
        host, port = source.url.removeprefix("http://").split("/", 1)[0].split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=5) as client:
                client.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
                received = b""
                while received.count(b"--frame\r\n") < 2:
                    chunk = client.recv(65536)
                    assert chunk
                    received += chunk
            assert received.startswith(b"HTTP/1.0 200")
            assert b"multipart/x-mixed-replace; boundary=frame" in received
        time.sleep(0.3)  # the server writes the next frames into closed sockets
        with urllib.request.urlopen(source.snapshot_url, timeout=5) as response:
            jpeg = response.read()
        assert read_stamp(decode_grey(jpeg))
    assert source.returncode == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.timeout(30)
def test_mjpeg_source_too_small_for_the_stamp() -> None:
    """It refuses before READY instead of serving no frames."""
    source = MjpegSourceProcess(200, 64, 10)
    try:
        with pytest.raises(RuntimeError, match="status 2"):
            source.start()
    finally:
        source.stop()
    assert source.returncode == 2
