"""The network bench's viewers recover from loss as browsers do: NACKs are
repeated, and a frame that cannot be completed is given up for the next
keyframe, with a PLI."""

from __future__ import annotations

import time

import pytest
from aiortc.rtp import RtpPacket

from bench.loss_recovery import GIVE_UP, RecoveringJitterBuffer, RetryingNackGenerator

KEY, DELTA = b"\x10\x00", b"\x10\x01"
"""VP8 payload descriptors with S set and partition 0, then a first payload
byte whose P bit says keyframe (0) or not (1)."""
MIDDLE = b"\x00\x55"


def rtp(sequence: int, timestamp: int, marker: bool, payload: bytes) -> RtpPacket:
    packet = RtpPacket(
        payload_type=96, sequence_number=sequence, timestamp=timestamp, marker=int(marker)
    )
    packet.payload = payload
    packet._data = payload[1:]  # type: ignore[attr-defined]  # what aiortc's depayloader keeps
    return packet


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        # loss_recovery reads time.monotonic() on every call: patching the
        # time module reaches it.
        monkeypatch.setattr(time, "monotonic", lambda: self.now)


def test_a_frame_missing_a_packet_is_given_up_for_the_next_keyframe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    buffer = RecoveringJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(rtp(1, 100, True, KEY))[1] is not None
    # Frame 200 loses its middle packet for good; frames behind it wait.
    buffer.add(rtp(2, 200, False, DELTA))
    buffer.add(rtp(4, 200, True, MIDDLE))
    assert buffer.add(rtp(5, 300, True, DELTA)) == (False, None)
    clock.now += GIVE_UP / 2
    assert buffer.add(rtp(6, 400, True, DELTA)) == (False, None)  # still waiting
    clock.now += GIVE_UP
    pli, frame = buffer.add(rtp(7, 500, False, KEY))
    # Given up: the broken frame and those after it are dropped; a keyframe is asked for.
    assert pli and frame is None
    pli, frame = buffer.add(rtp(8, 500, True, MIDDLE))
    assert frame is not None and frame.timestamp == 500


def test_a_complete_keyframe_behind_a_broken_frame_is_decoded_at_once() -> None:
    buffer = RecoveringJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(rtp(1, 100, True, KEY))[1] is not None
    buffer.add(rtp(2, 200, False, DELTA))  # its last packet, 3, is lost
    buffer.add(rtp(5, 300, True, DELTA))  # 4 lost too
    assert buffer.add(rtp(6, 400, False, KEY)) == (False, None)
    _pli, frame = buffer.add(rtp(7, 400, True, MIDDLE))
    assert frame is not None and frame.timestamp == 400
    assert buffer.add(rtp(8, 500, True, DELTA))[1] is not None  # and on from there


def test_with_no_keyframe_in_the_buffer_it_waits_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    buffer = RecoveringJitterBuffer(capacity=128, is_video=True)
    buffer.add(rtp(1, 100, False, KEY))  # its last packet never comes
    clock.now += 2 * GIVE_UP
    assert buffer.add(rtp(3, 200, True, DELTA)) == (True, None)
    assert buffer.add(rtp(4, 300, True, DELTA)) == (False, None)  # undecodable: dropped
    assert buffer.add(rtp(5, 400, True, KEY))[1] is not None
    assert RecoveringJitterBuffer.keyframes >= 2


def test_missing_packets_are_asked_for_again_after_a_round_trip_then_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    nacks = RetryingNackGenerator()
    assert not nacks.add(rtp(1, 100, True, KEY))
    assert nacks.add(rtp(3, 200, True, DELTA)) and nacks.missing == {2}  # a gap: ask
    clock.now += 0.05
    assert not nacks.add(rtp(4, 300, True, DELTA))  # asked a moment ago
    clock.now += 1.5 * nacks.round_trip
    assert nacks.add(rtp(5, 400, True, DELTA)) and nacks.missing == {2}  # ask again
    clock.now += GIVE_UP
    assert not nacks.add(rtp(6, 500, True, DELTA)) and nacks.missing == set()


def test_the_retry_waits_longer_on_a_slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    nacks = RetryingNackGenerator()
    nacks.add(rtp(1, 100, True, KEY))
    for sequence in range(3, 40, 2):  # every other packet lost, each back 0.6 s later
        nacks.add(rtp(sequence, sequence, True, DELTA))
        clock.now += 0.6
        nacks.add(rtp(sequence - 1, sequence - 1, True, DELTA))
    assert 0.5 < nacks.round_trip < 0.7


def test_packets_missed_in_an_outage_are_not_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    nacks = RetryingNackGenerator()
    nacks.add(rtp(1, 100, True, KEY))
    clock.now += 5  # nothing arrives for 5 s
    assert not nacks.add(rtp(80, 8000, True, DELTA)) and nacks.missing == set()
    assert nacks.add(rtp(82, 8200, True, DELTA)) and nacks.missing == {81}
