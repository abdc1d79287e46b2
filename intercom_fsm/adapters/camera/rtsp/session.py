"""One RTSP session with a camera, on the event loop (RFC 2326).

:meth:`RtspSession.start` connects and sets the camera's H.264 video up:
``OPTIONS`` (which keep-alive the camera takes), ``DESCRIBE``, ``SETUP``
(interleaved on the control connection, or UDP to a pair of ports of ours),
``PLAY``, answering a ``401`` with the URL's credentials. From then on every
picture goes to ``on_unit`` as it completes, on the loop; the session is kept
alive at half the camera's session timeout (``GET_PARAMETER`` where the
camera lists it, else ``OPTIONS``); an ending the daemon did not ask for (the
camera closes the connection, ends the session, or sends what is not RTSP)
goes to ``on_end`` once, with a reason fit for the log. :meth:`close` sends
``TEARDOWN`` and lets go. A camera that stops sending without closing
anything is noticed by whoever watches the pictures (the reader's read
timeout), not here.

Every reason and error names the camera by its URL without credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import attrs

from intercom_fsm.adapters.camera.rtsp.auth import Authenticator
from intercom_fsm.adapters.camera.rtsp.depacketize import (
    DepacketizedUnit,
    H264Depacketizer,
    parse_rtp,
)
from intercom_fsm.adapters.camera.rtsp.describe import (
    NotReadHere,
    VideoTrack,
    base_url,
    video_track,
)
from intercom_fsm.adapters.camera.rtsp.messages import (
    IncomingStream,
    Interleaved,
    Response,
    RtspProtocolError,
    ServerRequest,
    request,
    response,
)
from intercom_fsm.adapters.camera.rtsp.udp import UdpMedia
from intercom_fsm.adapters.camera.rtsp.url import CameraUrl

logger = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT = 60.0
"""Seconds a camera keeps a session without a request, unless it says (RFC 2326 12.37)."""
MIN_KEEP_ALIVE = 5.0
MAX_AUTH_ROUNDS = 2

OnUnit = Callable[[DepacketizedUnit, float], None]
"""A complete picture and when its last packet arrived (``time.monotonic()``)."""


class RtspFailure(Exception):
    """The session could not start or went wrong. The message is safe to log."""


@attrs.frozen
class Negotiated:
    """What ``SETUP`` settled."""

    session: str
    timeout: float
    rtp_channel: int | None
    """Interleaved: the channel RTP comes on; None over UDP."""
    server_ports: tuple[int, int] | None


class RtspSession:
    def __init__(
        self,
        url: str,
        transport: str,
        timeout: float,
        on_unit: OnUnit,
        on_end: Callable[[str], None],
    ) -> None:
        self.camera = CameraUrl.parse(url)
        self._transport_kind = transport
        self._timeout = timeout
        self._on_unit = on_unit
        self._on_end = on_end
        self._auth = Authenticator(self.camera.credentials)
        self._incoming = IncomingStream()
        self._control: asyncio.Transport | None = None
        self._media: UdpMedia | None = None
        self._cseq = 0
        self._waiting: dict[int, asyncio.Future[Response]] = {}
        self._keep_alive_method = "OPTIONS"
        self._negotiated: Negotiated | None = None
        self._track: VideoTrack | None = None
        self._depacketizer: H264Depacketizer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._camera_address: str | None = None
        self._playing = False
        self._ended = False
        self._closed = False

    @property
    def track(self) -> VideoTrack | None:
        return self._track

    @property
    def depacketizer(self) -> H264Depacketizer | None:
        return self._depacketizer

    @property
    def strangers(self) -> int:
        """Over UDP: datagrams dropped for not coming from the camera."""
        return self._media.strangers if self._media is not None else 0

    # --- starting -------------------------------------------------------------------

    async def start(self) -> VideoTrack:
        """Set the video up and play it. Raises :class:`NotReadHere` when the
        camera's video is none this package reads (the connection is closed by
        its ``release``), :class:`RtspFailure` when the camera cannot be
        reached or refuses."""
        try:
            return await self._start()
        except NotReadHere as why:
            why.hold(lambda: self.close(teardown=False))
            raise
        except BaseException:
            self.close(teardown=False)
            raise

    async def _start(self) -> VideoTrack:
        loop = asyncio.get_running_loop()
        camera = self.camera
        try:
            async with asyncio.timeout(self._timeout):
                self._control, _ = await loop.create_connection(
                    lambda: _Control(self), camera.host, camera.port
                )
        except TimeoutError:
            raise RtspFailure(
                f"{camera.description} did not answer within {self._timeout:g} s"
            ) from None
        except OSError as error:
            raise RtspFailure(
                f"cannot connect to {camera.description} ({_reason(error)})"
            ) from None
        peer = self._control.get_extra_info("peername")
        self._camera_address = peer[0] if peer else None
        options = await self._request("OPTIONS", camera.url, accept_failure=True)
        if options.ok and "GET_PARAMETER" in (options.headers.get("Public") or "").upper():
            self._keep_alive_method = "GET_PARAMETER"
        described = await self._request("DESCRIBE", camera.url, {"Accept": "application/sdp"})
        base = base_url(
            camera.url,
            described.headers.get("Content-Base"),
            described.headers.get("Content-Location"),
        )
        track = video_track(described.body.decode("utf-8", "replace"), base)
        self._track = track
        self._depacketizer = H264Depacketizer(track.payload_type)
        self._negotiated = await self._setup(track)
        await self._request(
            "PLAY", track.session_url, {"Session": self._negotiated.session, "Range": "npt=0.000-"}
        )
        self._playing = True
        self._spawn(self._keep_alive(self._negotiated))
        return track

    async def _setup(self, track: VideoTrack) -> Negotiated:
        media: UdpMedia | None = None
        if self._transport_kind == "udp":
            media = self._media = UdpMedia(self.received_rtp)
            local = self._control.get_extra_info("sockname") if self._control else None
            try:
                ports = await media.open(local[0] if local else "0.0.0.0")
            except OSError as error:
                raise RtspFailure(str(error)) from None
            asked = f"RTP/AVP;unicast;client_port={ports[0]}-{ports[1]}"
        else:
            asked = "RTP/AVP/TCP;unicast;interleaved=0-1"
        answer = await self._request("SETUP", track.control_url, {"Transport": asked})
        session_header = answer.headers.get("Session")
        if not session_header:
            raise RtspFailure(f"{self.camera.description} set up no session")
        session, _, parameters = session_header.partition(";")
        timeout_match = re.search(r"timeout\s*=\s*(\d+)", parameters)
        timeout = float(timeout_match.group(1)) if timeout_match else DEFAULT_SESSION_TIMEOUT
        transport = (answer.headers.get("Transport") or "").lower()
        if media is not None:
            match = re.search(r"server_port=(\d+)(?:-(\d+))?", transport)
            if "/tcp" in transport or match is None:
                raise RtspFailure(f"{self.camera.description} refused RTP over UDP")
            rtp_port = int(match.group(1))
            rtcp_port = int(match.group(2)) if match.group(2) else rtp_port + 1
            source = re.search(r"source=([^;]+)", transport)
            camera = source.group(1).strip() if source else self._camera_address
            if camera is not None:
                media.accept(camera, rtcp_port)
            return Negotiated(session.strip(), timeout, None, (rtp_port, rtcp_port))
        channels = re.search(r"interleaved=(\d+)", transport)
        if "/tcp" not in transport and "interleaved" not in transport:
            raise RtspFailure(f"{self.camera.description} refused RTP over its TCP connection")
        channel = int(channels.group(1)) if channels else 0
        return Negotiated(session.strip(), timeout, channel, None)

    # --- requests -------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        accept_failure: bool = False,
    ) -> Response:
        for _ in range(MAX_AUTH_ROUNDS + 1):
            answer = await self._send(method, url, headers or {})
            if answer.status == 401 and self._auth.challenged(
                answer.headers.get_all("WWW-Authenticate")
            ):
                continue
            break
        if answer.ok or accept_failure:
            return answer
        if answer.status == 401:
            why = (
                "the credentials were refused"
                if self.camera.credentials
                else "it wants credentials"
            )
            raise RtspFailure(f"{self.camera.description} answered {method} with 401 ({why})")
        if 300 <= answer.status < 400:
            raise NotReadHere(f"the camera redirects ({answer.status})")
        raise RtspFailure(
            f"{self.camera.description} answered {method} with {answer.status} "
            f"{answer.reason[:60]}".rstrip()
        )

    async def _send(self, method: str, url: str, headers: dict[str, str]) -> Response:
        control = self._control
        if control is None or control.is_closing():
            raise RtspFailure(f"{self.camera.description} closed the connection")
        self._cseq += 1
        fields = dict(headers)
        authorization = self._auth.header(method, url)
        if authorization is not None:
            fields["Authorization"] = authorization
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting[self._cseq] = answer
        control.write(request(method, url, self._cseq, fields))
        try:
            async with asyncio.timeout(self._timeout):
                return await answer
        except TimeoutError:
            raise RtspFailure(
                f"{self.camera.description} did not answer {method} within {self._timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(self._cseq, None)

    async def _keep_alive(self, negotiated: Negotiated) -> None:
        interval = max(MIN_KEEP_ALIVE, negotiated.timeout / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                answer = await self._send(
                    self._keep_alive_method,
                    self._track.session_url if self._track else self.camera.url,
                    {"Session": negotiated.session},
                )
            except RtspFailure as failure:
                logger.debug("keep-alive: %s", failure)
                continue
            if answer.status == 454:
                self._end(f"{self.camera.description} ended the session")
                return
            if answer.status == 401:
                self._auth.challenged(answer.headers.get_all("WWW-Authenticate"))

    # --- what arrives ---------------------------------------------------------------

    def received(self, data: bytes) -> None:
        try:
            messages = self._incoming.feed(data)
        except RtspProtocolError as error:
            self._end(f"{self.camera.description} sent what is not RTSP ({error})")
            return
        negotiated = self._negotiated
        rtp_channel = negotiated.rtp_channel if negotiated is not None else None
        for message in messages:
            if type(message) is Interleaved:
                if message.channel == rtp_channel:
                    self.received_rtp(message.data)
            elif type(message) is Response:
                self._answered(message)
            elif type(message) is ServerRequest:
                self._asked(message)

    def received_rtp(self, data: bytes) -> None:
        depacketizer = self._depacketizer
        packet = parse_rtp(data)
        if packet is None or depacketizer is None:
            return
        units = depacketizer.push(packet)
        if units:
            now = time.monotonic()
            for unit in units:
                self._on_unit(unit, now)

    def _answered(self, answer: Response) -> None:
        cseq = answer.cseq
        if cseq is None and self._waiting:
            cseq = min(self._waiting)
        waiting = self._waiting.pop(cseq, None) if cseq is not None else None
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    def _asked(self, asked: ServerRequest) -> None:
        control = self._control
        if control is None or control.is_closing():
            return
        cseq = asked.headers.get("CSeq")
        if asked.method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER"):
            control.write(response(200, "OK", cseq))
        else:
            control.write(response(501, "Not Implemented", cseq))

    def connection_lost(self, error: Exception | None) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(
                    RtspFailure(f"{self.camera.description} closed the connection")
                )
        self._waiting.clear()
        reason = f" ({_reason(error)})" if error is not None else ""
        self._end(f"{self.camera.description} closed the connection{reason}")

    # --- ending ---------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        """An ending the daemon did not ask for; while starting, the request
        in flight fails instead."""
        if self._ended or self._closed:
            return
        self._ended = True
        playing = self._playing
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(RtspFailure(reason))
        self._waiting.clear()
        self.close(teardown=False)
        if playing:
            self._on_end(reason)

    def close(self, teardown: bool = True) -> None:
        """End the session (``TEARDOWN`` when it was playing) and free its
        sockets. Never raises; ``on_end`` is not called."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        control = self._control
        negotiated = self._negotiated
        if control is not None and not control.is_closing():
            if teardown and negotiated is not None and self._track is not None:
                self._cseq += 1
                headers = {"Session": negotiated.session}
                authorization = self._auth.header("TEARDOWN", self._track.session_url)
                if authorization is not None:
                    headers["Authorization"] = authorization
                with contextlib.suppress(Exception):
                    control.write(request("TEARDOWN", self._track.session_url, self._cseq, headers))
            control.close()
        if self._media is not None:
            self._media.close()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Control(asyncio.Protocol):
    def __init__(self, session: RtspSession) -> None:
        self._session = session

    def data_received(self, data: bytes) -> None:
        self._session.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._session.connection_lost(exc)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        # asyncio's own words for a refused connection carry the address; the errno's do not.
        if error.errno:
            return os.strerror(error.errno)
        if error.strerror:
            return error.strerror
    return type(error).__name__
