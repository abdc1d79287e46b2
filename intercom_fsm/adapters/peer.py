"""The peer adapter: one aiortc answerer per viewer session.

``create`` applies a viewer's offer, attaches a track fed from the shared
camera, and answers; ``add_candidate`` applies the viewer's trickled ICE;
``close`` releases the connection and the viewer's track. What happens comes
back as events: ``AnswerReady``, ``LocalIceCandidate``, ``PeerConnected``,
``PeerFailed``, ``PeerClosed``, each tagged with the peer's serial so the
machine can tell a replaced peer's late news from the current one's.

aiortc gathers every local candidate before ``setLocalDescription`` returns
and writes them into the answer (no trickle); they are sent as ``ice``
messages as well, for receivers that only listen to trickle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from intercom_fsm.adapters.rtcp_feedback import FeedbackListener, observe_receiver_feedback
from intercom_fsm.config import IceServer
from intercom_fsm.events import (
    AnswerReady,
    Event,
    IceCandidate,
    LocalIceCandidate,
    PeerClosed,
    PeerConnected,
    PeerFailed,
    PeerId,
    SessionId,
)

logger = logging.getLogger(__name__)

CODEC_MIME = {"vp8": "video/VP8", "h264": "video/H264"}
CHEAPEST_FIRST = ("vp8", "h264")
"""VP8 costs about half of H.264's CPU per frame in aiortc (field notes), so
``auto`` prefers it whenever the viewer offers it."""


class TrackSource(Protocol):
    def track_for_viewer(self) -> MediaStreamTrack: ...


@runtime_checkable
class SharedEncodingTrack(Protocol):
    """A track that can take already encoded packets from an encoder shared
    by viewers of the same codec (the camera adapter's tracks can)."""

    def share_encoder(self, mime_type: str) -> bool: ...

    def request_keyframe(self) -> None: ...


@attrs.frozen
class PeerSettings:
    ice_servers: tuple[IceServer, ...] = ()
    codec: str = "auto"
    """``auto``, ``vp8`` or ``h264``: the codec put first in the answer when the
    offer has it."""


@attrs.define
class _Peer:
    session: SessionId
    peer: PeerId
    connection: RTCPeerConnection
    track: MediaStreamTrack | None = None
    answered: asyncio.Event = attrs.field(factory=asyncio.Event)
    closing: bool = False


class PeerConnections:
    def __init__(
        self, settings: PeerSettings, source: TrackSource, on_event: Callable[[Event], None]
    ) -> None:
        self._settings = settings
        self._source = source
        self._emit = on_event
        self._peers: dict[PeerId, _Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None:
        """Apply the offer and answer it. Never raises: a failure becomes
        ``PeerFailed``."""
        connection = RTCPeerConnection(self._configuration())
        entry = _Peer(session, peer, connection)
        self._peers[peer] = entry
        connection.on("connectionstatechange", lambda: self._state_changed(entry))
        try:
            await self._answer(entry, offer_sdp)
        except Exception as error:  # aiortc raises many kinds on a bad offer
            if not entry.closing:
                self._emit(
                    PeerFailed(session, peer, f"offer could not be applied: {_error_text(error)}")
                )

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None:
        entry = self._peers.get(peer)
        if entry is None:
            return
        # aiortc needs the remote description before any remote candidate.
        await entry.answered.wait()
        try:
            await entry.connection.addIceCandidate(_to_aiortc(candidate))
        except Exception as error:
            logger.warning(
                "viewer %r: remote ICE candidate refused: %s", session, _error_text(error)
            )

    async def close(self, peer: PeerId) -> None:
        entry = self._peers.pop(peer, None)
        if entry is None:
            return
        entry.closing = True
        entry.answered.set()
        if entry.track is not None:
            entry.track.stop()
        await entry.connection.close()

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(peer) for peer in list(self._peers)))

    async def _answer(self, entry: _Peer, offer_sdp: str) -> None:
        connection = entry.connection
        await connection.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        video = [t for t in connection.getTransceivers() if t.kind == "video"]
        if not video:
            raise ValueError("the offer has no video section")
        entry.track = self._source.track_for_viewer()
        sender = connection.addTrack(entry.track)
        video[0].setCodecPreferences(self._codec_order())
        answer = await connection.createAnswer()
        await connection.setLocalDescription(answer)
        entry.answered.set()
        if entry.closing:
            return
        local = connection.localDescription
        # Media starts once ICE and DTLS are up, well after this: the track
        # knows its codec before aiortc asks it for the first frame.
        codec = negotiated_video_codec(local.sdp)
        track = entry.track
        if (
            isinstance(track, SharedEncodingTrack)
            and codec is not None
            and track.share_encoder(codec)
        ):
            _forward_keyframe_requests(sender, track)
            if isinstance(track, FeedbackListener):
                observe_receiver_feedback(sender, track)
        self._emit(AnswerReady(entry.session, entry.peer, local.sdp))
        for candidate in local_candidates(local.sdp):
            self._emit(LocalIceCandidate(entry.session, entry.peer, candidate))
        self._emit(LocalIceCandidate(entry.session, entry.peer, None))

    def _state_changed(self, entry: _Peer) -> None:
        if entry.closing:
            return
        state = entry.connection.connectionState
        if state == "connected":
            self._emit(PeerConnected(entry.session, entry.peer))
        elif state == "failed":
            self._emit(PeerFailed(entry.session, entry.peer, "ICE or DTLS failed"))
        elif state == "closed":
            self._emit(PeerClosed(entry.session, entry.peer))

    def _configuration(self) -> RTCConfiguration:
        # An explicit (possibly empty) list: aiortc's default asks a public
        # STUN server.
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(list(s.urls), username=s.username, credential=s.credential)
                for s in self._settings.ice_servers
            ]
        )

    def _codec_order(self) -> list[Any]:
        codecs = RTCRtpSender.getCapabilities("video").codecs
        preferred = (
            CHEAPEST_FIRST
            if self._settings.codec == "auto"
            else (self._settings.codec, *[c for c in CHEAPEST_FIRST if c != self._settings.codec])
        )
        rank = {CODEC_MIME[name].lower(): index for index, name in enumerate(preferred)}
        # Retransmission codecs follow the codec they protect in the list.
        return sorted(codecs, key=lambda codec: rank.get(codec.mimeType.lower(), len(rank)))


def negotiated_video_codec(sdp: str) -> str | None:
    """The MIME type (``video/VP8``) of the first codec of the SDP's first
    video section: the one an answer's sender uses."""
    payload_type: str | None = None
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if payload_type is not None:
                break
            fields = line[2:].split()
            in_video = fields[0] == "video" and len(fields) > 3
            payload_type = fields[3] if in_video else None
        elif in_video and payload_type and line.startswith(f"a=rtpmap:{payload_type} "):
            name = line.split(" ", 1)[1].split("/", 1)[0]
            return f"video/{name}"
    return None


def _forward_keyframe_requests(sender: RTCRtpSender, track: SharedEncodingTrack) -> None:
    """aiortc answers a viewer's PLI/FIR by asking its own encoder for a
    keyframe, which a pre-encoded stream does not have: the request goes to
    the shared encoder too. (``_send_keyframe`` is aiortc's handler; without
    it, the shared encoder's periodic keyframes still bring a viewer back.)"""
    own = getattr(sender, "_send_keyframe", None)
    if not callable(own):
        return

    def send_keyframe() -> None:
        own()
        track.request_keyframe()

    setattr(sender, "_send_keyframe", send_keyframe)  # noqa: B010


def local_candidates(sdp: str) -> list[IceCandidate]:
    """The candidates written into an SDP, with their media section."""
    found: list[IceCandidate] = []
    index = -1
    mid: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
        elif line.startswith("a=candidate:") and index >= 0:
            found.append(IceCandidate(line[2:].strip(), sdp_mid=mid, sdp_mline_index=index))
    return found


def _error_text(error: BaseException) -> str:
    """One short line about an error; aiortc raises some (a bad SDP line, a
    bad candidate) with an empty message, so the type names it then."""
    text = " ".join(str(error).split())[:200]
    return text or f"{type(error).__name__} (no detail)"


def _to_aiortc(candidate: IceCandidate | None) -> Any:
    if candidate is None or not candidate.candidate.strip():
        return None
    text = candidate.candidate.strip()
    parsed = candidate_from_sdp(text.removeprefix("candidate:"))
    parsed.sdpMid = candidate.sdp_mid
    parsed.sdpMLineIndex = candidate.sdp_mline_index
    if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
        parsed.sdpMLineIndex = 0
    return parsed
