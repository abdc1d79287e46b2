"""When the passthrough asks the camera for a keyframe: at once for a joiner,
at most once a CAMERA_KEYFRAME_INTERVAL for viewers' losses, never when the
camera cannot be asked."""

from __future__ import annotations

from intercom_fsm.adapters.camera.hub import FrameHub
from intercom_fsm.adapters.camera.passthrough import CAMERA_KEYFRAME_INTERVAL, H264Passthrough


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_joiners_at_once_losses_at_most_once_an_interval() -> None:
    clock = Clock()
    asks: list[float] = []
    passthrough = H264Passthrough(FrameHub(15), lambda: None, clock)
    passthrough.ask_camera_with(lambda: asks.append(clock.now))

    passthrough.subscribe()
    assert asks == [100.0]
    clock.now += 0.1
    passthrough.request_keyframe()  # a loss right after: the joiner's keyframe is on its way
    passthrough.subscribe()  # a second joiner is never made to wait
    assert asks == [100.0, 100.1]
    clock.now += CAMERA_KEYFRAME_INTERVAL / 2
    passthrough.request_keyframe()
    assert len(asks) == 2
    clock.now += CAMERA_KEYFRAME_INTERVAL / 2
    passthrough.request_keyframe()
    assert asks[2:] == [clock.now]
    assert passthrough.keyframe_requests == 3


def test_a_camera_that_cannot_be_asked_is_not() -> None:
    passthrough = H264Passthrough(FrameHub(15), lambda: None)
    passthrough.subscribe()
    passthrough.request_keyframe()
    assert passthrough.keyframe_requests == 1
    asks: list[int] = []
    passthrough.ask_camera_with(lambda: asks.append(1))
    passthrough.ask_camera_with(None)  # the camera closed
    passthrough.request_keyframe(urgent=True)
    assert asks == []
