"""One RTSP session (:mod:`intercom_fsm.adapters.camera.rtsp.session`)
against a camera scripted on 127.0.0.1: the requests in order and signed
when asked, the camera's own requests answered, keep-alives, and every way
a session ends, each with a reason that names no secret."""

from __future__ import annotations

import asyncio
import socket

import pytest

from intercom_fsm.adapters.camera.rtsp import session as session_module
from intercom_fsm.adapters.camera.rtsp.depacketize import DepacketizedUnit
from intercom_fsm.adapters.camera.rtsp.describe import NotReadHere
from intercom_fsm.adapters.camera.rtsp.session import RtspFailure, RtspSession
from tests.camera.conftest import eventually

from .scripted_camera import Asked, ok, scripted

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

IDR = bytes([0x65]) + bytes(range(1, 200))


def rtp(sequence: int, timestamp: int, payload: bytes) -> bytes:
    return (
        bytes([0x80, 0x80 | 96])
        + sequence.to_bytes(2, "big")
        + timestamp.to_bytes(4, "big")
        + bytes(4)
        + payload
    )


def interleaved(channel: int, data: bytes) -> bytes:
    return b"$" + bytes([channel]) + len(data).to_bytes(2, "big") + data


class Watcher:
    def __init__(self) -> None:
        self.units: list[DepacketizedUnit] = []
        self.ends: list[str] = []

    def unit(self, unit: DepacketizedUnit, _arrived: float) -> None:
        self.units.append(unit)

    def end(self, reason: str) -> None:
        self.ends.append(reason)


def with_short_timeout(answer: str | None) -> str | None:
    """``answer`` with the session's timeout at 0: keep-alives as often as
    the session allows (its ``MIN_KEEP_ALIVE``)."""
    return answer.replace("timeout=60", "timeout=0") if answer else answer


def session_for(url: str, watcher: Watcher, transport: str = "tcp") -> RtspSession:
    return RtspSession(url, transport, 2.0, watcher.unit, watcher.end)


async def test_a_camera_that_wants_digest_is_signed_in_and_plays() -> None:
    def digest_camera(asked: Asked) -> str | None:
        if asked.headers.get("Authorization") is None:
            return 'RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="cam", nonce="n0"'
        return ok(asked)

    async with scripted(digest_camera) as camera:
        watcher = Watcher()
        user_url = camera.url.replace("rtsp://", "rtsp://door:s%40cret@")
        session = session_for(user_url, watcher)
        track = await session.start()
        camera.send(interleaved(0, rtp(1, 3000, IDR)))
        await eventually(lambda: bool(watcher.units), 5, "the camera's picture")
        session.close()
        await eventually(lambda: "TEARDOWN" in camera.methods(), 5, "TEARDOWN")
    assert camera.methods() == [
        "OPTIONS", "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"
    ]  # fmt: skip
    assert track.control_url == f"{camera.url}/track1"
    signed = [a for a in camera.asked if a.headers.get("Authorization")]
    assert len(signed) == 5 and all(
        'username="door"' in (a.headers.get("Authorization") or "") for a in signed
    )
    # The URL the camera sees carries no credentials; the password is never sent.
    assert all("door" not in a.url and "cret" not in a.url for a in camera.asked)
    assert all("s@cret" not in str(a.headers) for a in camera.asked)
    assert camera.asked[3].headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert camera.asked[4].headers.get("Session") == "12345678"
    assert watcher.units[0].has_idr and watcher.ends == []


async def test_refused_credentials_end_the_start_with_a_reason_without_them() -> None:
    def refusing(asked: Asked) -> str | None:
        return 'RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="cam"'

    async with scripted(refusing) as camera:
        session = session_for(camera.url.replace("rtsp://", "rtsp://admin:hunter2@"), Watcher())
        with pytest.raises(RtspFailure) as failure:
            await session.start()
    assert "401 (the credentials were refused)" in str(failure.value)
    assert "hunter2" not in str(failure.value) and "admin" not in str(failure.value)


async def test_a_redirect_or_another_codec_is_left_to_ffmpeg() -> None:
    def redirecting(asked: Asked) -> str | None:
        if asked.method == "DESCRIBE":
            return "RTSP/1.0 302 Found\r\nLocation: rtsp://elsewhere/live"
        return ok(asked)

    async with scripted(redirecting) as camera:
        with pytest.raises(NotReadHere, match="redirects"):
            await session_for(camera.url, Watcher()).start()


async def test_the_cameras_own_requests_are_answered_and_it_is_kept_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_module, "MIN_KEEP_ALIVE", 0.2)

    def short_session(asked: Asked) -> str | None:
        return with_short_timeout(ok(asked))

    async with scripted(short_session) as camera:
        watcher = Watcher()
        session = session_for(camera.url, watcher)
        await session.start()
        camera.send(b"OPTIONS * RTSP/1.0\r\nCSeq: 41\r\n\r\n")
        camera.send(b"ANNOUNCE * RTSP/1.0\r\nCSeq: 42\r\n\r\n")
        await eventually(lambda: len(camera.answers) == 2, 5, "the answers to the camera")
        await eventually(lambda: camera.methods().count("GET_PARAMETER") >= 2, 5, "keep-alives")
        session.close()
    assert [(a.status, a.cseq) for a in camera.answers] == [(200, 41), (501, 42)]
    keep_alive = next(a for a in camera.asked if a.method == "GET_PARAMETER")
    assert keep_alive.headers.get("Session") == "12345678"
    assert watcher.ends == []


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        ("close", "closed the connection"),
        ("junk", "sent what is not RTSP"),
        ("session", "ended the session"),
    ],
)
async def test_every_ending_the_daemon_did_not_ask_for_is_told_once(
    monkeypatch: pytest.MonkeyPatch, ending: str, reason: str
) -> None:
    monkeypatch.setattr(session_module, "MIN_KEEP_ALIVE", 0.2)
    gone = False

    def camera_that_forgets(asked: Asked) -> str | None:
        if gone and asked.method == "GET_PARAMETER":
            return "RTSP/1.0 454 Session Not Found"
        return with_short_timeout(ok(asked))

    async with scripted(camera_that_forgets) as camera:
        watcher = Watcher()
        session = session_for(camera.url, watcher)
        await session.start()
        if ending == "close":
            camera.drop()
        elif ending == "junk":
            camera.send(b"\x17" * 70_000 + b"\n")
        else:
            gone = True
        await eventually(lambda: bool(watcher.ends), 5, "the ending")
        await asyncio.sleep(0.3)
        session.close()
    assert len(watcher.ends) == 1 and reason in watcher.ends[0]
    assert camera.url.split("//", 1)[1].split("/", 1)[0] in watcher.ends[0]


async def test_a_silent_camera_and_a_closed_port_fail_in_time() -> None:
    async with scripted(lambda _asked: None) as camera:
        with pytest.raises(RtspFailure, match="did not answer OPTIONS within 2 s"):
            await session_for(camera.url, Watcher()).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = r"cannot connect to rtsp://127\.0\.0\.1:\d+/live \(Connection refused\)"
    with pytest.raises(RtspFailure, match=refused):
        await session_for(f"rtsp://127.0.0.1:{port}/live", Watcher()).start()


async def test_over_udp_only_the_cameras_packets_count() -> None:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    ports: list[int] = []

    def udp_camera(asked: Asked) -> str | None:
        if asked.method == "SETUP":
            transport = asked.headers.get("Transport") or ""
            ports.append(int(transport.split("client_port=")[1].split("-")[0]))
            server = sender.getsockname()[1]
            return (
                "RTSP/1.0 200 OK\r\nSession: 77;timeout=60\r\n"
                f"Transport: RTP/AVP;unicast;{transport.split(';')[-1]};"
                f"server_port={server}-{server + 1}"
            )
        return ok(asked)

    try:
        async with scripted(udp_camera) as camera:
            watcher = Watcher()
            session = session_for(camera.url, watcher, "udp")
            await session.start()
            assert ports and ports[0] % 2 == 0
            stranger.sendto(rtp(1, 100, IDR), ("127.0.0.1", ports[0]))
            sender.sendto(rtp(2, 200, IDR), ("127.0.0.1", ports[0]))
            await eventually(lambda: bool(watcher.units), 5, "the camera's picture")
            await asyncio.sleep(0.2)
            session.close()
    finally:
        sender.close()
        stranger.close()
    assert [unit.timestamp for unit in watcher.units] == [200]
