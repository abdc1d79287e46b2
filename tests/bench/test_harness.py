"""The pipeline bench's own parts that its figures rest on: the viewer's
marker-bit jitter buffer, the lag file's window, percentiles."""

from __future__ import annotations

from pathlib import Path

from aiortc.rtp import RtpPacket

from bench.marker_jitter import MarkerJitterBuffer
from bench.runs import percentile, read_lag_window


def rtp(sequence: int, timestamp: int, marker: bool, payload: bytes) -> RtpPacket:
    packet = RtpPacket(
        payload_type=96, sequence_number=sequence, timestamp=timestamp, marker=int(marker)
    )
    packet.payload = payload
    packet._data = payload  # type: ignore[attr-defined]  # set by aiortc's receiver
    return packet


def test_a_frame_is_complete_on_its_marked_last_packet() -> None:
    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    _pli, frame = buffer.add(rtp(10, 3000, False, b"ab"))
    assert frame is None
    _pli, frame = buffer.add(rtp(11, 3000, True, b"cd"))
    # The library's own buffer would wait for packet 12 (the next frame) here.
    assert frame is not None and frame.data == b"abcd" and frame.timestamp == 3000
    _pli, frame = buffer.add(rtp(12, 6000, True, b"ef"))
    assert frame is not None and frame.data == b"ef" and frame.timestamp == 6000


def test_a_missing_packet_holds_the_frame_back() -> None:
    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    buffer.add(rtp(20, 3000, False, b"ab"))
    _pli, frame = buffer.add(rtp(22, 3000, True, b"ef"))
    assert frame is None
    _pli, frame = buffer.add(rtp(21, 3000, False, b"cd"))
    assert frame is not None and frame.data == b"abcdef"


def test_lag_window_and_percentiles(tmp_path: Path) -> None:
    lag_file = tmp_path / "lag.txt"
    lag_file.write_text("100.0 0.001\n101.0 0.002\n102.0 0.050\n103.0 0.003\n")
    assert read_lag_window(lag_file, 101.0, 103.0) == [0.002, 0.050]
    assert read_lag_window(tmp_path / "missing.txt", 0, 1) == []
    assert percentile([5, 1, 3], 0.5) == 3
    assert percentile(list(range(101)), 0.99) == 99
    assert percentile([], 0.5) is None
