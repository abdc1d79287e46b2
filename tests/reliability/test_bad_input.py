"""Malformed signaling frames, sent to the running daemon through the
sandbox's control API, while a real aiortc viewer watches: each is refused
with a clear log line naming the problem, the socket stays up (except for the
frame over the size limit, which closes it by design and is followed by a
reconnect), and the viewer keeps receiving frames throughout."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from intercom_fsm.adapters.signaling import SignalingSettings
from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.conftest import approve_pending
from tests.e2e.daemon_process import DaemonProcess
from tests.e2e.viewer import MediaViewer
from tests.loopback import restrict_ice_to_loopback
from tests.reliability.helpers import (
    count_matching,
    harvest_sandbox,
    messages,
    running_daemon,
    wait_async,
)

restrict_ice_to_loopback()
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(150)]

MAX_VIEWERS = 3
SOCKET_OPEN = "signaling: socket open"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(device_interval=1, device_expires_in=120, test_controls=True) as process:
        yield process
        harvest_sandbox(process)


async def offer_sdp(kind: str = "video") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver(kind, direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def frame(**fields: object) -> str:
    return json.dumps(fields)


@pytest.fixture(scope="module")
def streaming(
    sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DaemonProcess, str]]:
    tmp_path = tmp_path_factory.mktemp("bad-input")
    token_file = tmp_path / "config" / "tokens.json"
    with running_daemon(
        sandbox, token_file, tmp_path / "daemon.log", MAX_VIEWERS=str(MAX_VIEWERS)
    ) as daemon:
        device_code = approve_pending(sandbox, daemon)
        daemon.wait_for_state("Negotiating")
        yield daemon, device_code


async def test_malformed_frames_are_refused_and_the_stream_goes_on(
    sandbox: SandboxProcess, streaming: tuple[DaemonProcess, str]
) -> None:
    daemon, device_code = streaming
    video_offer = await offer_sdp("video")
    audio_offer = await offer_sdp("audio")
    viewer = await MediaViewer(sandbox.info, device_code).start()
    try:
        await viewer.wait_for_frames(5)
        await run_table(sandbox, daemon, viewer, device_code, video_offer, audio_offer)
        await oversize_frame_reconnects(sandbox, daemon, viewer, device_code)
        assert not any(r.get("level") == "error" for r in daemon.records())
    finally:
        await viewer.close()


async def test_frames_for_unknown_sessions_are_logged(
    sandbox: SandboxProcess, streaming: tuple[DaemonProcess, str]
) -> None:
    daemon, device_code = streaming
    lines = len(daemon.records())
    await send(sandbox, device_code, frame(type="hangup", session="nobody-here"))
    await send(sandbox, device_code, frame(type="ice", session="ghost-here", candidate=None))

    def said(text: str) -> bool:
        return any(text in str(r.get("msg", "")) for r in daemon.records()[lines:])

    await wait_async(lambda: said("nobody-here") and said("ghost-here"), 10, "both reported")
    later = daemon.records()[lines:]
    assert not any(r.get("level") == "error" for r in later)
    assert daemon.process is not None and daemon.process.poll() is None


async def send(sandbox: SandboxProcess, device_code: str, data: str | bytes) -> None:
    if isinstance(data, bytes):
        sent = await asyncio.to_thread(sandbox.control.send_to_device, device_code, binary=data)
    else:
        sent = await asyncio.to_thread(sandbox.control.send_to_device, device_code, text=data)
    assert sent, "the device's socket was not connected"


async def run_table(
    sandbox: SandboxProcess,
    daemon: DaemonProcess,
    viewer: MediaViewer,
    device_code: str,
    video_offer: str,
    audio_offer: str,
) -> None:
    table: list[tuple[str, str | bytes, str]] = [
        ("invalid JSON", "{not json", "frame is not valid JSON"),
        ("a JSON array", "[1, 2]", "frame is an array, not a JSON object"),
        ("a JSON string", '"offer"', "frame is a string, not a JSON object"),
        ("no type", frame(sdp="v=0"), "missing field 'type'"),
        ("numeric type", frame(type=5), "field 'type' must be a string (got a number)"),
        ("null type", frame(type=None), "field 'type' must be a string (got null)"),
        ("empty type", frame(type=""), "field 'type' is empty"),
        ("unknown type", frame(type="teleport"), "unknown type 'teleport'"),
        ("offer without sdp", frame(type="offer", session="s1"), "offer: missing field 'sdp'"),
        (
            "offer, null sdp",
            frame(type="offer", sdp=None),
            "field 'sdp' must be a string (got null)",
        ),
        ("offer, empty sdp", frame(type="offer", sdp=""), "offer: field 'sdp' is empty"),
        ("offer, not SDP", frame(type="offer", sdp="hello"), "is not SDP"),
        (
            "offer, numeric session",
            frame(type="offer", session=7, sdp=video_offer),
            "field 'session' must be a string (got a number)",
        ),
        (
            "offer, unparsable SDP",
            frame(type="offer", session="garbled", sdp="v=0\r\nm=video nonsense\r\n"),
            "offer could not be applied",
        ),
        (
            "offer without video",
            frame(type="offer", session="audio-only", sdp=audio_offer),
            "offer could not be applied: the offer has no video section",
        ),
        (
            "ice, candidate a string",
            frame(type="ice", candidate="candidate:1 1 udp"),
            "field 'candidate' must be an object or null (got a string)",
        ),
        (
            "ice, wrong field types",
            frame(type="ice", candidate={"candidate": 5, "sdpMid": 0, "sdpMLineIndex": "x"}),
            "field 'candidate.candidate' must be a string (got a number)",
        ),
        ("binary frame", b"\x00\x01binary", "binary frame"),
        ("hangup, unknown session", frame(type="hangup", session="x"), "unknown viewer session"),
        (
            "ice, unknown session",
            frame(type="ice", session="ghost", candidate=None),
            "unknown viewer session",
        ),
    ]
    opened = count_matching(daemon, SOCKET_OPEN)
    for name, data, expected in table:
        before = len(viewer.frame_times)
        lines = len(daemon.records())
        await send(sandbox, device_code, data)

        # Typed defaults bind this row's values (a lambda's defaults are untyped).
        def problem_logged(problem: str = expected, since: int = lines) -> bool:
            return any(problem in str(r.get("msg", "")) for r in daemon.records()[since:])

        def frames_flow_again(frames_before: int = before) -> bool:
            return len(viewer.frame_times) > frames_before + 2

        if expected:
            await wait_async(
                problem_logged, 10, f"a log line naming the problem of {name!r} ({expected!r})"
            )
        await wait_async(frames_flow_again, 10, f"frames after {name}")
    # A bad candidate for a session that exists.
    lines = len(daemon.records())
    await send(
        sandbox,
        device_code,
        frame(type="offer", session="ice-victim", sdp=video_offer),
    )
    await send(
        sandbox,
        device_code,
        frame(
            type="ice",
            session="ice-victim",
            candidate={"candidate": "candidate:not a candidate", "sdpMid": "0", "sdpMLineIndex": 0},
        ),
    )
    await wait_async(
        lambda: any(
            "remote ICE candidate refused" in str(r.get("msg", ""))
            for r in daemon.records()[lines:]
        ),
        10,
        "the bad candidate refused",
    )
    # A flood of offers: the viewer limit holds.
    lines = len(daemon.records())
    for index in range(2 * MAX_VIEWERS):
        await send(
            sandbox, device_code, frame(type="offer", session=f"flood-{index}", sdp=video_offer)
        )
    await wait_async(
        lambda: any(
            "offer refused: 3 viewers already" in str(r.get("msg", ""))
            for r in daemon.records()[lines:]
        ),
        10,
        "an offer refused at the viewer limit",
    )
    for index in range(2 * MAX_VIEWERS):
        await send(sandbox, device_code, frame(type="hangup", session=f"flood-{index}"))
    await send(sandbox, device_code, frame(type="hangup", session="ice-victim"))
    start = time.monotonic()
    await wait_async(
        lambda: viewer.frames_between(start, time.monotonic()) >= 10,
        10,
        "the streaming viewer's frames after the flood",
    )
    # Every refusal says why: no log line ends on an empty cause.
    assert not [m for m in messages(daemon) if m.rstrip().endswith(":")]
    # Through all of it the socket stayed up.
    assert count_matching(daemon, SOCKET_OPEN) == opened
    assert count_matching(daemon, "socket ended") == 0
    assert daemon.process is not None and daemon.process.poll() is None
    assert not any(r.get("level") in ("error", "critical") for r in daemon.records()), [
        r for r in daemon.records() if r.get("level") in ("error", "critical")
    ]


async def oversize_frame_reconnects(
    sandbox: SandboxProcess, daemon: DaemonProcess, viewer: MediaViewer, device_code: str
) -> None:
    limit = SignalingSettings(ws_base_url="ws://x").max_message_bytes
    opened = count_matching(daemon, SOCKET_OPEN)
    negotiating = daemon.wait_for_state("Negotiating")
    await send(sandbox, device_code, frame(type="unknown", pad="x" * (limit + 10)))
    await wait_async(
        lambda: count_matching(daemon, f"larger than the {limit} bytes limit") > 0,
        10,
        "the oversize frame reported",
    )
    await asyncio.to_thread(daemon.wait_for_state, "Negotiating", 20, negotiating)
    assert count_matching(daemon, SOCKET_OPEN) == opened + 1
    await viewer.offer()
    await viewer.wait_for_frames(10)
