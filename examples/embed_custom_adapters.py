"""Embed the lifecycle machine in your own product, with adapters of your own.

The machine does no I/O: it takes events and returns effects. Here the
effects are carried out by this file's small adapters instead of the daemon's:
the camera is a track drawing frames with numpy, and the signaling transport
is an in-process pair of asyncio queues instead of a WebSocket. A viewer (an
aiortc peer in the same process) sends its offer through the queue, gets the
answer back, and the example exits 0 once it has received FRAMES_WANTED frames.

Run it:  python examples/embed_custom_adapters.py
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

from intercom_fsm import LifecycleMachine, TransitionRecord
from intercom_fsm import effects as fx
from intercom_fsm import events as ev

FRAMES_WANTED = 30
WIDTH, HEIGHT = 320, 240
VERIFICATION_URI = "https://example.com/device"
NO_STUN = RTCConfiguration(iceServers=[])  # never ask a public STUN server
Message = dict[str, str]

# Only because device and viewer run on one machine: aioice leaves loopback out
# of its host candidates, so offer 127.0.0.1 alone. A real device offers its
# real interfaces and must not do this.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class GradientTrack(VideoStreamTrack):
    """The custom camera: a moving gradient drawn with numpy."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()  # paced at 30 frames a second
        # Shifts one column a frame (the 90 kHz clock moves 3000 a frame).
        columns = (np.arange(WIDTH) + pts // 3000) % 256
        image = np.broadcast_to(columns.astype(np.uint8)[None, :, None], (HEIGHT, WIDTH, 3))
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class QueueSignaling:
    """The custom transport: messages on two queues, one per direction."""

    def __init__(self) -> None:
        self.to_device: asyncio.Queue[Message] = asyncio.Queue()
        self.to_viewer: asyncio.Queue[Message] = asyncio.Queue()


class Device:
    """Feeds the machine events and carries out the effects it returns."""

    def __init__(self, signaling: QueueSignaling) -> None:
        self.machine = LifecycleMachine()
        self.machine.add_listener(print_transition)
        self.signaling = signaling
        self.events: asyncio.Queue[ev.Event] = asyncio.Queue()
        self.peers: dict[ev.PeerId, RTCPeerConnection] = {}
        self.timers: dict[fx.TimerKey, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.reader: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        self.events.put_nowait(ev.Started(tokens=None))
        while not self.machine.finished:
            for effect in self.machine.handle(await self.events.get()):
                self.carry_out(effect)
        for handle in self.timers.values():
            handle.cancel()
        # Stopped closed the socket and every peer: let those closes finish.
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def carry_out(self, effect: fx.Effect) -> None:
        post = self.events.put_nowait
        match effect:
            # Auth: this example's backend approves every device at once.
            case fx.RequestDeviceCode():
                post(ev.DeviceCodeIssued("device", "WDJB-MJHT", VERIFICATION_URI, 600, 0.1))
            case fx.ShowUserCode(user_code=code, verification_uri=uri):
                print(f"  (a person would enter {code} at {uri})")
            case fx.PollToken() | fx.RefreshTokens():
                post(ev.TokensGranted(ev.TokenGrant("access", "refresh", expires_in=3600)))
            # Signaling over the queues.
            case fx.OpenSocket():
                self.reader = self.spawn(self.read_signaling())
                post(ev.SocketOpened())
            case fx.CloseSocket():
                if self.reader is not None:
                    self.reader.cancel()
            case fx.SendAnswer(session=session, sdp=sdp):
                answer = {"type": "answer", "session": session, "sdp": sdp}
                self.signaling.to_viewer.put_nowait(answer)
            # Peers: one aiortc answerer per viewer, fed by the numpy camera.
            case fx.CreatePeer(session=session, peer=peer, offer_sdp=offer):
                self.peers[peer] = RTCPeerConnection(NO_STUN)
                self.spawn(self.answer(session, peer, offer))
            case fx.ClosePeer(peer=peer):
                if (connection := self.peers.pop(peer, None)) is not None:
                    self.spawn(connection.close())
            # Timers: deliver the timer's event after its delay.
            case fx.ScheduleTimer():
                self.cancel_timer(effect.key)
                fire = fx.timer_event(effect)
                loop = asyncio.get_running_loop()
                self.timers[effect.key] = loop.call_later(effect.delay, post, fire)
            case fx.CancelTimer():
                self.cancel_timer(effect.key)
            case _:
                pass  # tokens to store, camera on/off: nothing to do in this example

    async def read_signaling(self) -> None:
        while True:
            message = await self.signaling.to_device.get()
            if message["type"] == "offer":
                self.events.put_nowait(ev.OfferReceived(message["session"], message["sdp"]))

    async def answer(self, session: ev.SessionId, peer: ev.PeerId, offer: str) -> None:
        connection = self.peers[peer]

        def state_changed() -> None:
            if connection.connectionState == "connected":
                self.events.put_nowait(ev.PeerConnected(session, peer))
            elif connection.connectionState == "failed":
                self.events.put_nowait(ev.PeerFailed(session, peer, "ICE or DTLS failed"))

        connection.on("connectionstatechange", state_changed)
        try:
            await connection.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            connection.addTrack(GradientTrack())
            # aiortc gathers every candidate here and writes them into the answer.
            await connection.setLocalDescription(await connection.createAnswer())
        except Exception as error:  # a bad offer: the machine closes this viewer
            self.events.put_nowait(ev.PeerFailed(session, peer, f"bad offer: {error}"))
            return
        self.events.put_nowait(ev.AnswerReady(session, peer, connection.localDescription.sdp))

    def cancel_timer(self, key: fx.TimerKey) -> None:
        if (handle := self.timers.pop(key, None)) is not None:
            handle.cancel()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def print_transition(record: TransitionRecord) -> None:
    if record.changed_state:
        who = f"viewer {record.session}" if record.session is not None else "device"
        print(f"{who}: {record.source} -> {record.dest} on {record.event}")


async def watch(signaling: QueueSignaling) -> int:
    """The viewer: offers through the queue, counts the frames it receives."""
    viewer = RTCPeerConnection(NO_STUN)
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    viewer.on("track", tracks.put_nowait)
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    offer = {"type": "offer", "session": "viewer-1", "sdp": viewer.localDescription.sdp}
    signaling.to_device.put_nowait(offer)
    answer = await signaling.to_viewer.get()
    await viewer.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    track = await tracks.get()
    for _ in range(FRAMES_WANTED):
        frame = await track.recv()
    print(f"viewer received {FRAMES_WANTED} frames of {frame.width}x{frame.height}")
    await viewer.close()
    return FRAMES_WANTED


async def main() -> int:
    signaling = QueueSignaling()
    device = Device(signaling)
    running = asyncio.create_task(device.run())
    try:
        received = await asyncio.wait_for(watch(signaling), timeout=45)
    finally:
        device.events.put_nowait(ev.ShutdownRequested("example done"))
        await asyncio.wait_for(running, timeout=10)
    return 0 if received == FRAMES_WANTED else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
