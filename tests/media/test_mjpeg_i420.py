"""MJPEG cameras are decoded by PyAV straight to I420: no BGR picture on the
way, and OpenCV is never loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bench.mjpeg_source import MjpegSourceProcess
from intercom_fsm.adapters.camera.yuv import FrameToI420

ROOT = Path(__file__).resolve().parents[2]


def decoded_jpeg(
    image: np.ndarray, sampling: int = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
) -> av.VideoFrame:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
    assert ok
    decoder = av.CodecContext.create("mjpeg", "r")
    (frame,) = decoder.decode(av.Packet(jpeg.tobytes()))
    assert isinstance(frame, av.VideoFrame)
    return frame


def test_a_jpeg_becomes_limited_range_i420_as_the_bgr_path_made_it() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, 160:] = 255
    image[:120, :80] = (255, 0, 0)  # blue, BGR
    frame = decoded_jpeg(image)
    assert frame.format.name == "yuvj420p"  # what PyAV's decoder gives: full range
    pixels = FrameToI420(320, 240).convert(frame)
    assert pixels.shape == (360, 320) and not pixels.flags.writeable
    through_bgr = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    assert np.abs(pixels.astype(int) - through_bgr.astype(int)).max() <= 3
    assert pixels[:240, 200:].min() >= 233 and pixels[:240, 100:150].max() <= 18


def test_a_422_jpeg_of_another_shape_is_letterboxed() -> None:
    frame = decoded_jpeg(
        np.full((360, 640, 3), 255, np.uint8), cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422
    )
    assert frame.format.name == "yuvj422p"  # many USB cameras send 4:2:2
    pixels = FrameToI420(320, 240).convert(frame)
    luma, chroma = pixels[:240], pixels[240:]
    assert luma[:30].max() <= 16 and luma[210:].max() <= 16  # black bars, limited range
    assert luma[30:210].min() >= 233
    assert np.abs(chroma.astype(int) - 128).max() <= 2  # white and black: no colour


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_the_camera_reads_an_mjpeg_stream_without_opencv() -> None:
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from intercom_fsm.adapters.camera import Camera, CameraSettings
        from bench.stamp import read_stamp

        async def main(url):
            camera = Camera(CameraSettings(source=url, width=320, height=240, fps=15), print)
            await camera.open()
            track = camera.track_for_viewer()
            frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(10)]
            stats = camera.stats
            await camera.close()
            stamps = [read_stamp(f.to_ndarray()[: f.height]) for f in frames]
            print(json.dumps({
                "opencv_loaded": "cv2" in sys.modules,
                "formats": sorted({f.format.name for f in frames}),
                "stamped": sum(s is not None for s in stamps),
                "source": stats.source_codec,
                "decoded": stats.pictures_decoded,
            }))

        asyncio.run(main(sys.argv[1]))
        """
    )
    with MjpegSourceProcess(320, 240, 15) as source:
        result = subprocess.run(
            [sys.executable, "-c", script, source.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=45,
            check=True,
        )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["opencv_loaded"] is False
    assert report["formats"] == ["yuv420p"]
    assert report["stamped"] == 10  # every picture decoded right, stamp and all
    assert report["source"] == "mjpeg 320x240"
    assert report["decoded"] >= 10
