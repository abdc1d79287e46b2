"""An aiortc viewer of the running daemon, through the sandbox's viewer
socket, that also listens to the door and may talk to it (protocol.md 3.2)."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from intercom_fsm.sandbox.process import SandboxInfo
from tests.audio.peers import Heard, SamplesTrack
from tests.e2e.viewer import MediaViewer

AudioWish = Literal["recvonly", "sendrecv", "none"]


class AudioViewer(MediaViewer):
    """Video (recvonly, unless ``video`` is off) and an audio section of
    ``audio``'s direction; with ``talk``, the viewer's microphone sends those
    samples; ``audio_sections`` more than one offers that many audio sections;
    ``offer_edit`` rewrites the offer's SDP before it is sent."""

    def __init__(
        self,
        info: SandboxInfo,
        device_code: str,
        audio: AudioWish = "recvonly",
        talk: SamplesTrack | None = None,
        offer_edit: object = None,
        video: bool = True,
        audio_sections: int = 1,
    ) -> None:
        super().__init__(info, device_code)
        self.video = video
        self.audio_sections = audio_sections
        self.audio = audio
        self.talk = talk
        self.heard: Heard | None = None
        self._edit = offer_edit

    async def offer(self) -> None:
        if self._pc is not None:
            await self._pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        if self.video:
            pc.addTransceiver("video", direction="recvonly")
        if self.audio != "none":
            transceiver = pc.addTransceiver("audio", direction=self.audio)
            if self.talk is not None:
                transceiver.sender.replaceTrack(self.talk)
            for _ in range(self.audio_sections - 1):
                pc.addTransceiver("audio", direction=self.audio)
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        if callable(self._edit):
            sdp = self._edit(sdp)
        assert self._socket is not None
        await self._socket.send_str(json.dumps({"type": "offer", "sdp": sdp}))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            if self.heard is None:  # the first audio section's
                self.heard = Heard(track)
        else:
            self._tasks.append(asyncio.create_task(self._count(track)))

    async def close(self) -> None:
        if self.heard is not None:
            await self.heard.stop()
        await super().close()
