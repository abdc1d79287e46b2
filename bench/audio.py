"""Two-way audio, side by side with the common aiortc pattern: `python bench/audio.py`.

On one PulseAudio sound server in user space (null sinks for the door's
microphone and speaker, reached through ALSA as a sound card would be), each
client runs as its own process (``bench/audio_device.py``): ours (the audio
adapter) and the naive one (``MediaPlayer(format="alsa")`` for the
microphone, ``MediaRecorder(format="alsa")`` for the speaker). aiortc viewers
in this process talk to it over loopback.

* mouth to ear, door → viewer: a chirp a second played into the microphone
  sink (its moment from ALSA's delay) to the moment a viewer's decoded frame
  carries it; viewer → door: a chirp a second from a viewer's microphone
  track to the moment the speaker's monitor captures it. Growth: median of
  the last third of the run minus that of the first third.
* CPU per extra listening viewer: the client process's CPU over a window
  with one viewer, then with five, per added viewer, in % of one core.
* ERLE: with the speaker fed back into the microphone (a loopback, 30 ms and
  -18 dB), what a listening viewer hears of a talking viewer's voice with
  ``AUDIO_ECHO=off`` over what it hears with ``cancel``.

``--quick``: 60 s latency runs instead of 10 minutes. Writes bench/results/audio.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the root
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402

from bench.audio_probe import ChirpTrack, DoorEar, DoorMouth, ViewerEar, latencies  # noqa: E402
from bench.report import fmt  # noqa: E402
from tests.audio.signals import level_dbfs, voice  # noqa: E402
from tests.audio.sound_io import die_with_parent  # noqa: E402
from tests.audio.sound_server import (  # noqa: E402
    MIC_FEED_PCM,
    MIC_PCM,
    SPEAKER_MONITOR_PCM,
    SPEAKER_PCM,
    SoundServer,
)
from tests.loopback import restrict_ice_to_loopback  # noqa: E402

restrict_ice_to_loopback()
RESULTS = ROOT / "bench" / "results" / "audio.md"
CPU_WINDOW = 20.0
EXTRA_VIEWERS = 4


@dataclass
class Figures:
    client: str
    to_viewer: list[tuple[float, float]] = field(default_factory=list)
    to_door: list[tuple[float, float]] = field(default_factory=list)
    cpu_one: float | None = None
    cpu_per_extra: float | None = None
    echo_dbfs: float | None = None


class Door:
    """The client under test as a process."""

    def __init__(self, server: SoundServer, client: str, echo: str = "cancel") -> None:
        command = [sys.executable, str(ROOT / "bench" / "audio_device.py"), "--client", client,
                   "--microphone", MIC_PCM, "--speaker", SPEAKER_PCM, "--echo", echo]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            env={**_env(), **server.environment},
            preexec_fn=die_with_parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"the {client} door did not start")
        self.url = f"http://127.0.0.1:{line[1]}/offer"
        self.stats = psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        times = self.stats.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


async def join(
    http: aiohttp.ClientSession, door: Door, talk: MediaStreamTrack | None
) -> tuple[RTCPeerConnection, ViewerEar]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    def on_track(track: MediaStreamTrack) -> None:
        if not received.done():
            received.set_result(track)

    pc.on("track", on_track)
    if talk is not None:
        pc.addTrack(talk)
    else:
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(door.url, data=pc.localDescription.sdp) as response:
        answer = await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return pc, ViewerEar(await asyncio.wait_for(received, 15))


async def measure_client(server: SoundServer, client: str, seconds: float) -> Figures:
    figures = Figures(client)
    door = Door(server, client)
    mouth, ear = DoorMouth(MIC_FEED_PCM, 1.0), DoorEar(SPEAKER_MONITOR_PCM)
    peers: list[RTCPeerConnection] = []
    try:
        async with aiohttp.ClientSession() as http:
            talker = ChirpTrack(1.0)
            pc, viewer_ear = await join(http, door, talker)
            peers.append(pc)
            await asyncio.sleep(3)
            viewer_ear.clear()
            talker.sent.clear()
            mouth.start()
            ear.start()
            await asyncio.sleep(seconds)
            figures.to_viewer = latencies(mouth.played, viewer_ear.chirp_times())
            figures.to_door = latencies(talker.sent, ear.chirp_times())
            heard_at_viewer = f"{len(figures.to_viewer)} / {len(mouth.played)}"
            heard_at_door = f"{len(figures.to_door)} / {len(talker.sent)}"
            print(f"  {client}: chirps heard {heard_at_viewer} (viewer), {heard_at_door} (door)")
            before = door.cpu_seconds()
            await asyncio.sleep(CPU_WINDOW)
            figures.cpu_one = (door.cpu_seconds() - before) / CPU_WINDOW * 100
            for _ in range(EXTRA_VIEWERS):
                pc, _ear = await join(http, door, None)
                peers.append(pc)
            await asyncio.sleep(3)
            before = door.cpu_seconds()
            await asyncio.sleep(CPU_WINDOW)
            cpu_all = (door.cpu_seconds() - before) / CPU_WINDOW * 100
            figures.cpu_per_extra = (cpu_all - figures.cpu_one) / EXTRA_VIEWERS
    finally:
        mouth.stop()
        ear.stop()
        for pc in peers:
            await pc.close()
        door.stop()
    return figures


async def echo_heard(server: SoundServer, client: str, echo: str) -> float:
    """dBFS of a talking viewer's voice as a listening viewer hears it back."""
    door = Door(server, client, echo)
    peers: list[RTCPeerConnection] = []
    try:
        async with aiohttp.ClientSession() as http:
            talker = ChirpTrack(1.0, signal=voice(20, dbfs=-20))
            pc, _ = await join(http, door, talker)
            peers.append(pc)
            pc, listener = await join(http, door, None)
            peers.append(pc)
            await asyncio.sleep(6)
            listener.clear()
            await asyncio.sleep(5)
            return level_dbfs(listener.samples())
    finally:
        for pc in peers:
            await pc.close()
        door.stop()


def summary(pairs: list[tuple[float, float]]) -> tuple[float | None, float | None, float | None]:
    """(p50, p95, growth) in ms."""
    if len(pairs) < 6:
        return None, None, None
    values = sorted(lat * 1000 for _, lat in pairs)
    p50 = statistics.median(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    third = len(pairs) // 3
    first = statistics.median(lat for _, lat in pairs[:third]) * 1000
    last = statistics.median(lat for _, lat in pairs[-third:]) * 1000
    return p50, p95, last - first


def verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else "PASS" if ok else "MISS"


def table(ours: Figures, naive: Figures, erle: float | None, seconds: float) -> str:
    o_v, n_v = summary(ours.to_viewer), summary(naive.to_viewer)
    o_d, n_d = summary(ours.to_door), summary(naive.to_door)
    minutes = f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
    rows = [
        ("mouth to ear, door → viewer, p50 / p95", "<= 150 ms",
         f"{fmt(o_v[0])} / {fmt(o_v[1])} ms", f"{fmt(n_v[0])} / {fmt(n_v[1])} ms",
         verdict(o_v[1], (o_v[1] or 1e9) <= 150)),
        ("mouth to ear, viewer → door, p50 / p95", "<= 150 ms",
         f"{fmt(o_d[0])} / {fmt(o_d[1])} ms", f"{fmt(n_d[0])} / {fmt(n_d[1])} ms",
         verdict(o_d[1], (o_d[1] or 1e9) <= 150)),
        (f"growth over {minutes}, door → viewer", "<= 20 ms", fmt(o_v[2], " ms"),
         fmt(n_v[2], " ms"), verdict(o_v[2], abs(o_v[2] or 1e9) <= 20)),
        (f"growth over {minutes}, viewer → door", "<= 20 ms", fmt(o_d[2], " ms"),
         fmt(n_d[2], " ms"), verdict(o_d[2], abs(o_d[2] or 1e9) <= 20)),
        ("CPU, one talking and listening viewer", "—", fmt(ours.cpu_one, " %", 1),
         fmt(naive.cpu_one, " %", 1), "n/a"),
        ("CPU per extra listening viewer (of one core)", "<= 2 %",
         fmt(ours.cpu_per_extra, " %", 2), fmt(naive.cpu_per_extra, " %", 2),
         verdict(ours.cpu_per_extra, (ours.cpu_per_extra or 1e9) <= 2)),
        ("ERLE (echo heard with AUDIO_ECHO=off over cancel)", ">= 25 dB", fmt(erle, " dB", 1),
         "0 dB (no canceller)", verdict(erle, (erle or 0) >= 25)),
    ]  # fmt: skip
    lines = [
        "| measure | target | intercom-fsm | naive (MediaPlayer/MediaRecorder) | verdict |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
    ]
    return "\n".join(lines)


async def run(seconds: float) -> str:
    with SoundServer() as server:
        print(f"latency runs of {seconds:g} s each, then CPU and echo", flush=True)
        ours = await measure_client(server, "ours", seconds)
        naive = await measure_client(server, "naive", seconds)
        server.add_echo_path(latency_ms=30, volume_percent=50)
        echo_off = await echo_heard(server, "ours", "off")
        echo_cancel = await echo_heard(server, "ours", "cancel")
        naive.echo_dbfs = await echo_heard(server, "naive", "off")
        ours.echo_dbfs = echo_cancel
        erle = echo_off - echo_cancel
        print(f"  echo heard: off {echo_off:.1f} dBFS, cancel {echo_cancel:.1f} dBFS, "
              f"naive {naive.echo_dbfs:.1f} dBFS", flush=True)  # fmt: skip
    return table(ours, naive, erle, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s latency runs, not 10 min")
    parser.add_argument("--seconds", type=float, help="length of each latency run")
    arguments = parser.parse_args()
    seconds = arguments.seconds or (60.0 if arguments.quick else 600.0)
    started = time.monotonic()
    result = asyncio.run(run(seconds))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# Audio bench ({'quick' if seconds < 600 else 'full'} run, {stamp}, "
        f"{time.monotonic() - started:.0f} s)\n\n`python bench/audio.py"
        f"{' --quick' if arguments.quick else ''}`\n\n{result}\n"
    )
    print(text)
    if not arguments.seconds:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
