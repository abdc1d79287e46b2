"""The peer adapter: one aiortc answerer per viewer session.

``create`` applies a viewer's offer, attaches a track fed from the shared
camera, and answers; ``add_candidate`` applies the viewer's trickled ICE;
``close`` releases the connection and the viewer's track. What happens comes
back as events: ``AnswerReady``, ``LocalIceCandidate``, ``PeerConnected``,
``PeerFailed``, ``PeerClosed``, each tagged with the peer's serial so the
machine can tell a replaced peer's late news from the current one's.

aiortc gathers every local candidate before ``setLocalDescription`` returns
and writes them into the answer (no trickle); they are sent as ``ice``
messages as well, for receivers that only listen to trickle. The viewer's own
candidates, in its offer or trickled, pass :mod:`.peer_candidates` first.

A peer closed while its offer is still being applied (a hangup or a new offer
right behind it) gets no camera track; whatever track it did get is stopped
on every way out, so the capture goes idle when the last viewer has gone.
Closing never raises: each step of it stands alone.
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
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from intercom_fsm.adapters.audio.sdp import UnusableOffer
from intercom_fsm.adapters.peer_audio import PeerAudio, ViewerAudio
from intercom_fsm.adapters.peer_candidates import (
    CandidatePolicy,
    RemoteCandidates,
    candidate_host,
    filter_offer,
)
from intercom_fsm.adapters.peer_codecs import (
    describe_source,
    negotiated_profile_level_id,
    plan_video,
)
from intercom_fsm.adapters.rtcp_feedback import FeedbackListener, observe_receiver_feedback
from intercom_fsm.adapters.rtp_sender import send_with_lean_loop
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
from intercom_fsm.log_limit import LogLimiter
from intercom_fsm.redact import one_line, one_line_text

logger = logging.getLogger(__name__)


class TrackSource(Protocol):
    def track_for_viewer(self) -> MediaStreamTrack: ...


@runtime_checkable
class SharedEncodingTrack(Protocol):
    """A track that can take already encoded packets from an encoder shared
    by viewers of the same codec (the camera adapter's tracks can)."""

    def share_encoder(
        self, mime_type: str, profile_level_id: str | None = None, viewer: str = ""
    ) -> bool: ...

    def request_keyframe(self) -> None: ...


@attrs.frozen
class IceServer:
    """One RTCIceServer entry."""

    urls: tuple[str, ...]
    username: str | None = attrs.field(default=None, repr=False)
    credential: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class PeerSettings:
    ice_servers: tuple[IceServer, ...] = ()
    codec: str = "auto"
    """``auto``, ``vp8`` or ``h264``: the codec put first in the answer when the
    offer has it (see :mod:`.peer_codecs`)."""
    max_remote_candidates: int = 50
    """Per viewer, in the offer and trickled together."""
    max_mdns_candidates: int = 4
    allow_loopback_candidates: bool = False
    """Tests only (their viewers run on 127.0.0.1); never on a device."""
    relay_only: bool = False
    """Gather and use only the TURN server's relayed candidates: the device's
    own addresses never reach a viewer."""

    @property
    def candidate_policy(self) -> CandidatePolicy:
        return CandidatePolicy(
            self.max_remote_candidates, self.max_mdns_candidates, self.allow_loopback_candidates
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The TURN credentials, which no log line may carry."""
        return tuple(
            value
            for server in self.ice_servers
            for value in (server.username, server.credential)
            if value
        )


@attrs.define
class _Peer:
    session: SessionId
    peer: PeerId
    connection: RTCPeerConnection
    candidates: RemoteCandidates
    track: MediaStreamTrack | None = None
    audio: ViewerAudio | None = None
    answered: asyncio.Event = attrs.field(factory=asyncio.Event)
    closing: bool = False

    def stop_track(self) -> None:
        """Stop the viewer's video track and its share of the microphone."""
        track, self.track = self.track, None
        if track is not None:
            track.stop()
        audio, self.audio = self.audio, None
        if audio is not None:
            audio.stop()


class PeerConnections:
    def __init__(
        self,
        settings: PeerSettings,
        source: TrackSource,
        on_event: Callable[[Event], None],
        audio: PeerAudio | None = None,
    ) -> None:
        """``audio`` answers the offers' audio sections (protocol.md 3.2);
        without it they are answered inactive."""
        self._settings = settings
        self._source = source
        self._emit = on_event
        self._audio = audio or PeerAudio()
        self._peers: dict[PeerId, _Peer] = {}
        self._warnings = LogLimiter(logger)

    def __len__(self) -> int:
        return len(self._peers)

    async def create(self, session: SessionId, peer: PeerId, offer_sdp: str) -> None:
        """Apply the offer and answer it. Never raises: a failure becomes
        ``PeerFailed``."""
        connection = RTCPeerConnection(self._configuration())
        entry = _Peer(session, peer, connection, RemoteCandidates(self._settings.candidate_policy))
        self._peers[peer] = entry
        connection.on("connectionstatechange", lambda: self._state_changed(entry))
        try:
            await self._answer(entry, self._filtered(entry, offer_sdp))
        except Exception as error:  # aiortc raises many kinds on a bad offer
            entry.stop_track()
            if not entry.closing:
                self._emit(
                    PeerFailed(session, peer, f"offer could not be applied: {self._text(error)}")
                )
        if entry.closing:
            # Closed while the offer was being applied: close() ran before
            # any track existed, or while one was being made.
            entry.stop_track()

    async def add_candidate(
        self, session: SessionId, peer: PeerId, candidate: IceCandidate | None
    ) -> None:
        entry = self._peers.get(peer)
        if entry is None:
            return
        host = candidate_host(candidate.candidate) if candidate is not None else None
        refusal = entry.candidates.refusal(host) if host is not None else None
        if refusal is not None:
            self._warnings.log(
                "candidate dropped",
                "viewer %r: remote ICE candidate dropped: it %s",
                session,
                refusal,
            )
            return
        # aiortc needs the remote description before any remote candidate.
        await entry.answered.wait()
        if entry.closing:
            return
        try:
            await entry.connection.addIceCandidate(_to_aiortc(candidate))
        except Exception as error:
            self._warnings.log(
                "candidate refused",
                "viewer %r: remote ICE candidate refused: %s",
                session,
                self._text(error),
            )

    async def close(self, peer: PeerId) -> None:
        """Release the peer. Never raises: a connection that fails to close
        (aiortc raises on some offers) is logged, its track stopped anyway."""
        entry = self._peers.pop(peer, None)
        if entry is None:
            return
        entry.closing = True
        entry.answered.set()
        try:
            entry.stop_track()
        except Exception as error:
            logger.warning(
                "viewer %r: its track did not stop: %s", entry.session, self._text(error)
            )
        try:
            await entry.connection.close()
        except Exception as error:
            logger.warning(
                "viewer %r: its connection did not close cleanly: %s",
                entry.session,
                self._text(error),
            )

    async def close_all(self) -> None:
        await asyncio.gather(
            *(self.close(peer) for peer in list(self._peers)), return_exceptions=True
        )

    async def _answer(self, entry: _Peer, offer_sdp: str) -> None:
        connection = entry.connection
        audio = self._audio.prepare(connection, offer_sdp, entry.session)
        source = await describe_source(self._source)
        plan = plan_video(audio.offer_sdp, self._settings.codec, source)
        await connection.setRemoteDescription(RTCSessionDescription(plan.offer, "offer"))
        if self._peers.get(entry.peer) is not entry:  # closed meanwhile: no track for it
            return
        entry.audio = audio
        audio.attach()
        video = [t for t in connection.getTransceivers() if t.kind == "video"]
        sender: RTCRtpSender | None = None
        if video:
            entry.track = self._source.track_for_viewer()
            sender = connection.addTrack(entry.track)
        answer = await connection.createAnswer()
        await connection.setLocalDescription(plan.answer(answer))
        entry.answered.set()
        if entry.closing:
            return
        answer_sdp = audio.finish(connection.localDescription.sdp)
        # Media starts once ICE and DTLS are up, well after this: the track
        # knows its codec before aiortc asks it for the first frame.
        codec = negotiated_video_codec(answer_sdp)
        track = entry.track
        if (
            sender is not None
            and track is not None
            and isinstance(track, SharedEncodingTrack)
            and codec is not None
            and track.share_encoder(
                codec, negotiated_profile_level_id(answer_sdp), viewer=entry.session
            )
        ):
            _forward_keyframe_requests(sender, track)
            send_with_lean_loop(sender)
            if isinstance(track, FeedbackListener):
                observe_receiver_feedback(sender, track)
        self._emit(AnswerReady(entry.session, entry.peer, answer_sdp))
        for candidate in local_candidates(answer_sdp):
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

    def _filtered(self, entry: _Peer, offer_sdp: str) -> str:
        sdp, dropped = filter_offer(offer_sdp, entry.candidates)
        for refusal in dropped:
            self._warnings.log(
                "candidate dropped",
                "viewer %r: ICE candidate in the offer dropped: it %s",
                entry.session,
                refusal,
            )
        return sdp

    def _text(self, error: BaseException) -> str:
        if isinstance(error, UnusableOffer):  # our own words, not an exception's
            return one_line_text(str(error), self._settings.secrets)
        return one_line(error, self._settings.secrets)

    def _configuration(self) -> RTCConfiguration:
        # An explicit (possibly empty) list: aiortc's default asks a public
        # STUN server.
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(list(s.urls), username=s.username, credential=s.credential)
                for s in self._settings.ice_servers
            ],
            iceTransportPolicy=(
                RTCIceTransportPolicy.RELAY
                if self._settings.relay_only
                else RTCIceTransportPolicy.ALL
            ),
        )


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
