"""The audio side of one viewer's peer connection (protocol.md section 3.2).

The peer adapter calls :meth:`PeerAudio.prepare` with the offer before aiortc
sees it, gives aiortc :attr:`ViewerAudio.offer_sdp`, calls
:meth:`ViewerAudio.attach` once the remote description is set, and sends
:meth:`ViewerAudio.finish`-ed answer text:

| offer's audio | answer |
|---|---|
| none | video only |
| ``recvonly`` | ``sendonly``: the door's microphone (one shared encoding) |
| ``sendrecv`` | ``sendrecv``: the microphone, and the viewer's voice to the speaker |
| no Opus, a second section, or no audio device | ``inactive``; video as usual |

An offer without video is answered with audio alone when audio is possible,
and refused otherwise (``UnusableOffer``, which the peer adapter turns into
``PeerFailed``). Each section answered ``inactive`` is logged once, with why.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm.adapters.audio.sdp import OfferPlan, plan_offer
from intercom_fsm.adapters.rtp_sender import send_with_lean_loop

logger = logging.getLogger(__name__)


class DoorAudio(Protocol):
    """What a viewer's connection needs of the audio adapter
    (:class:`intercom_fsm.adapters.audio.door.Audio` fits)."""

    @property
    def has_microphone(self) -> bool: ...

    @property
    def has_speaker(self) -> bool: ...

    def track_for_listener(self) -> MediaStreamTrack: ...

    def add_talker(self, track: MediaStreamTrack) -> None: ...


class ViewerAudio:
    def __init__(
        self, audio: DoorAudio | None, plan: OfferPlan, connection: RTCPeerConnection
    ) -> None:
        self._audio = audio
        self.plan = plan
        self._connection = connection
        self.track: MediaStreamTrack | None = None
        if audio is not None and plan.receive_audio:
            connection.on("track", self._received)

    @property
    def offer_sdp(self) -> str:
        return self.plan.sdp

    def attach(self) -> None:
        """Point the answered audio section at the door: its direction and
        the shared microphone track."""
        plan, audio = self.plan, self._audio
        if audio is None or plan.audio_mid is None:
            return
        transceiver = next(
            (t for t in self._connection.getTransceivers() if t.mid == plan.audio_mid), None
        )
        if transceiver is None:
            return
        transceiver.direction = plan.audio_direction
        if plan.receive_audio:
            _lean_jitter_buffer(transceiver.receiver)
        if plan.send_audio:
            self.track = audio.track_for_listener()
            transceiver.sender.replaceTrack(self.track)
            send_with_lean_loop(transceiver.sender)
        self._connection.on("connectionstatechange", self._state_changed)

    def finish(self, answer_sdp: str) -> str:
        return self.plan.finish(answer_sdp)

    def stop(self) -> None:
        """Release the microphone track (aiortc stops it only once media ran)."""
        if self.track is not None:
            self.track.stop()

    def _received(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._audio is not None:
            self._audio.add_talker(track)

    def _state_changed(self) -> None:
        if self._connection.connectionState in ("closed", "failed"):
            self.stop()


def _lean_jitter_buffer(receiver: object) -> None:
    """aiortc holds four 20 ms frames of a received audio stream before it
    decodes the first (its fixed ``JitterBuffer(capacity=16, prefetch=4)``):
    80 ms of delay before the sound even reaches the playout buffer, which
    absorbs the network's jitter itself. One frame is enough for aiortc to
    reassemble and order packets. (A private attribute of aiortc 1.16; a
    version without it keeps its own buffer.)"""
    name = "_RTCRtpReceiver__jitter_buffer"
    if hasattr(receiver, name):
        from aiortc.jitterbuffer import JitterBuffer

        setattr(receiver, name, JitterBuffer(capacity=16, prefetch=1))


class PeerAudio:
    """Decides each viewer's audio; ``audio`` None: the device has none."""

    def __init__(self, audio: DoorAudio | None = None) -> None:
        self._audio = audio

    def prepare(self, connection: RTCPeerConnection, offer_sdp: str, viewer: str) -> ViewerAudio:
        """Raises ``UnusableOffer`` for an offer with nothing to answer."""
        audio = self._audio
        plan = plan_offer(
            offer_sdp,
            has_microphone=audio is not None and audio.has_microphone,
            has_speaker=audio is not None and audio.has_speaker,
        )
        for rejected in plan.rejected:
            logger.info(
                "viewer %r: audio section %s answered inactive: %s",
                viewer,
                rejected.section.mid or rejected.index,
                rejected.reason,
            )
        if plan.answers_audio:
            logger.info("viewer %r: audio %s", viewer, plan.audio_direction)
        return ViewerAudio(audio, plan, connection)
