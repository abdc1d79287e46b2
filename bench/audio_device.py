"""The door side of the audio bench, one process per client so its CPU is its own.

``--client ours``: the audio adapter (shared capture, one Opus encoding,
our playout and echo canceller) with the peer adapter's audio answering.
``--client naive``: the common aiortc pattern, ``MediaPlayer(format="alsa")``
for the microphone (through a ``MediaRelay``, so it is captured once) and
``MediaRecorder(format="alsa")`` per talking viewer for the speaker.

Offers come as HTTP POSTs on 127.0.0.1 (``/offer``, the SDP as the body;
the answer comes back). ``ready <port>`` on stdout says it listens; SIGTERM
ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from tests.loopback import restrict_ice_to_loopback  # noqa: E402

restrict_ice_to_loopback()


class OurDoor:
    def __init__(self, microphone: str, speaker: str, echo: str) -> None:
        from intercom_fsm.adapters.audio import AudioSettings
        from intercom_fsm.adapters.audio.door import Audio
        from intercom_fsm.adapters.peer_audio import PeerAudio

        self.audio = Audio(
            AudioSettings(source=microphone, sink=speaker, echo=echo), lambda _event: None
        )
        self.peer_audio = PeerAudio(self.audio)

    async def start(self) -> None:
        await self.audio.open_microphone()
        await self.audio.open_speaker()

    async def answer(self, pc: RTCPeerConnection, offer: str) -> str:
        viewer = self.peer_audio.prepare(pc, offer, "bench")
        await pc.setRemoteDescription(RTCSessionDescription(viewer.offer_sdp, "offer"))
        viewer.attach()
        await pc.setLocalDescription(await pc.createAnswer())
        return viewer.finish(pc.localDescription.sdp)

    async def stop(self) -> None:
        await self.audio.close()


class NaiveDoor:
    def __init__(self, microphone: str, speaker: str) -> None:
        from aiortc.contrib.media import MediaPlayer, MediaRelay

        self._speaker = speaker
        self.player = MediaPlayer(
            microphone, format="alsa", options={"sample_rate": "48000", "channels": "1"}
        )
        self.relay = MediaRelay()
        self.recorders: list[Any] = []
        self.starts: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        pass

    async def answer(self, pc: RTCPeerConnection, offer: str) -> str:
        from aiortc.contrib.media import MediaRecorder

        def on_track(track: Any) -> None:
            if track.kind == "audio":
                recorder = MediaRecorder(self._speaker, format="alsa")
                recorder.addTrack(track)
                self.recorders.append(recorder)
                self.starts.append(asyncio.ensure_future(recorder.start()))

        pc.on("track", on_track)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.direction != "inactive":
                wants = transceiver._offerDirection in ("sendrecv", "sendonly")
                transceiver.direction = "sendrecv" if wants else "sendonly"
                microphone = self.player.audio
                assert microphone is not None, "an ALSA capture device always has audio"
                transceiver.sender.replaceTrack(self.relay.subscribe(microphone))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def stop(self) -> None:
        for recorder in self.recorders:
            await recorder.stop()
        if self.player.audio is not None:
            self.player.audio.stop()


async def serve(arguments: argparse.Namespace) -> None:
    door: OurDoor | NaiveDoor = (
        OurDoor(arguments.microphone, arguments.speaker, arguments.echo)
        if arguments.client == "ours"
        else NaiveDoor(arguments.microphone, arguments.speaker)
    )
    await door.start()
    peers: set[RTCPeerConnection] = set()

    async def offer(request: web.Request) -> web.Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.add(pc)
        return web.Response(text=await door.answer(pc, await request.text()))

    app = web.Application()
    app.router.add_post("/offer", offer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"ready {port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    for pc in list(peers):
        await pc.close()
    await door.stop()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("ours", "naive"), required=True)
    parser.add_argument("--microphone", default="door_mic")
    parser.add_argument("--speaker", default="door_speaker")
    parser.add_argument("--echo", default="cancel")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
