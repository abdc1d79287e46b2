"""A real sound server for the audio tests: PulseAudio in user space.

The daemon reaches a sound card through ALSA; here ALSA reaches this server
through the ``pulse`` PCM plugin (Debian ``libasound2-plugins``), exactly as
the field notes describe for the PyAV wheel's own alsa-lib. Two null sinks
stand for the door panel:

* ``door_mic_feed``: what is played into it (:meth:`SoundServer.play`) is
  what the door's microphone hears: ALSA name :data:`MIC_PCM` captures its
  monitor;
* ``door_speaker_out``: what the door plays on ALSA name :data:`SPEAKER_PCM`
  lands there and is recorded from its monitor (:meth:`SoundServer.record`).

The server has its own runtime directory and socket, never the user's; the
process environment gets ``PULSE_SERVER`` and ``ALSA_CONFIG_PATH`` while it
runs. :meth:`stop` ends every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.audio.sound_io import Player, Recording, die_with_parent, end_process

RATE = 48_000
MIC_SINK = "door_mic_feed"
SPEAKER_SINK = "door_speaker_out"
MIC_PCM = "door_mic"
SPEAKER_PCM = "door_speaker"
SPEAKER_MONITOR_PCM = "door_speaker_monitor"
"""What the speaker plays, captured through ALSA (the benchmark's ear)."""
MIC_FEED_PCM = "door_mouth"
"""Playing here is what the microphone hears, through ALSA (the benchmark's mouth)."""
START_TIMEOUT = 10.0
_PCM_FORMAT = ["--format=s16le", f"--rate={RATE}", "--channels=1"]

Samples = npt.NDArray[np.int16]


class SoundServerMissing(RuntimeError):
    pass


def pulse_plugin_path() -> Path:
    arch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return Path(f"/usr/lib/{arch}/alsa-lib/libasound_module_pcm_pulse.so")


def missing_parts() -> list[str]:
    """What this host lacks for a sound server (Debian package names)."""
    missing = [
        package
        for command, package in (
            ("pulseaudio", "pulseaudio"),
            ("pactl", "pulseaudio-utils"),
            ("pacat", "pulseaudio-utils"),
        )
        if shutil.which(command) is None
    ]
    if not pulse_plugin_path().exists():
        missing.append("libasound2-plugins")
    return sorted(set(missing))


def alsa_config(mic_sink: str = MIC_SINK, speaker_sink: str = SPEAKER_SINK) -> str:
    """The ALSA configuration the PyAV wheel's alsa-lib needs (it cannot read
    Debian's: its hooks load plugins from the wheel's own prefix)."""
    return (
        f'pcm_type.pulse {{ lib "{pulse_plugin_path()}" }}\n'
        f'pcm.{MIC_PCM} {{ type pulse; device "{mic_sink}.monitor"\n'
        '  hint { show on; description "the door microphone (sound server)" } }\n'
        f'pcm.{SPEAKER_PCM} {{ type pulse; device "{speaker_sink}"\n'
        '  hint { show on; description "the door speaker (sound server)" } }\n'
        f'pcm.{SPEAKER_MONITOR_PCM} {{ type pulse; device "{speaker_sink}.monitor" }}\n'
        f'pcm.{MIC_FEED_PCM} {{ type pulse; device "{mic_sink}" }}\n'
    )


class SoundServer:
    def __init__(self) -> None:
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._children: list[Player | Recording] = []
        self._saved_env: dict[str, str | None] = {}
        self.modules: dict[str, int] = {}
        self._extra_modules: list[int] = []

    # --- life ----------------------------------------------------------------

    def start(self) -> None:
        missing = missing_parts()
        if missing:
            raise SoundServerMissing("missing Debian packages: " + " ".join(missing))
        directory = Path(tempfile.mkdtemp(prefix="intercom-sound-"))
        self._directory = directory
        runtime = directory / "runtime"
        runtime.mkdir(mode=0o700)
        (runtime / "pulse").mkdir(mode=0o700)
        config = directory / "asound.conf"
        config.write_text(alsa_config())
        env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(directory),
            "PULSE_STATE_PATH": str(directory / "state"),
        }
        env.pop("PULSE_SERVER", None)
        self._process = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=no",
                "--log-target=stderr",
                "--log-level=error",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                # pactl cannot end a client's stream; the CLI protocol can.
                f"--load=module-cli-protocol-unix socket={runtime / 'pulse' / 'cli'}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(directory / "pulseaudio.log", "wb"),  # noqa: SIM115
            preexec_fn=die_with_parent,
        )
        for name, value in self.environment.items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        self._wait_until_ready()
        self.add_sink(MIC_SINK)
        self.add_sink(SPEAKER_SINK)

    def stop_children(self) -> None:
        """Stop every player and recording started so far."""
        for child in self._children:
            child.stop()
        self._children.clear()

    def remove_extra_modules(self) -> None:
        """Unload what a test loaded besides the two sinks (an echo path)."""
        for index in self._extra_modules:
            self._pactl("unload-module", str(index), check=False)
        self._extra_modules.clear()

    def stop(self) -> None:
        self.stop_children()
        if self._process is not None:
            end_process(self._process)
            self._process = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> SoundServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def socket(self) -> Path:
        assert self._directory is not None
        return self._directory / "native"

    @property
    def alsa_config_path(self) -> Path:
        assert self._directory is not None
        return self._directory / "asound.conf"

    @property
    def environment(self) -> dict[str, str]:
        """What a client (this process, or a daemon started by a test) needs."""
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "ALSA_CONFIG_PATH": str(self.alsa_config_path),
        }

    def log(self) -> str:
        assert self._directory is not None
        return (self._directory / "pulseaudio.log").read_text(errors="replace")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SoundServerMissing(f"pulseaudio exited: {self.log()[-500:]}")
            if self.socket.exists() and self._pactl("info", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SoundServerMissing("pulseaudio did not start within 10 s")
            time.sleep(0.05)

    # --- devices ------------------------------------------------------------

    def add_sink(self, name: str) -> None:
        index = self.load_module(
            "module-null-sink", f"sink_name={name}", f"rate={RATE}", "channels=1"
        )
        self.modules[name] = index

    def remove_sink(self, name: str) -> None:
        """The device vanishes, as a USB sound card pulled out. PulseAudio
        would move the streams on it to another device; a card that is gone
        ends them instead, so they are killed."""
        sinks = self._listing("sinks")
        sink = next(item for item in sinks if item["name"] == name)
        monitor = next(
            item["index"] for item in self._listing("sources") if item["name"] == f"{name}.monitor"
        )
        doomed = [
            ("kill-sink-input", item["index"])
            for item in self._listing("sink-inputs")
            if item["sink"] == sink["index"]
        ] + [
            ("kill-source-output", item["index"])
            for item in self._listing("source-outputs")
            if item["source"] == monitor
        ]
        self.unload_module(self.modules.pop(name))
        for verb, index in doomed:
            self._cli(f"{verb} {index}")

    def _listing(self, kind: str) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = json.loads(
            self._pactl("--format=json", "list", kind).stdout or "[]"
        )
        return listing

    def load_module(self, name: str, *arguments: str) -> int:
        result = self._pactl("load-module", name, *arguments)
        return int(result.stdout.strip())

    def unload_module(self, index: int) -> None:
        self._pactl("unload-module", str(index))

    def add_echo_path(self, latency_ms: int = 30, volume_percent: int = 50) -> int:
        """The speaker's sound back into the microphone, delayed and
        attenuated as on a door panel (pulse volume is cubic: 50 % is -18 dB).

        A panel's acoustic path keeps its delay, so the loopback's rate
        steering is off (``adjust_time=0``): by default it resamples every
        10 s to hold its latency, which moves the echo in time, and each
        move costs the canceller a moment of re-adapting (measured: 15-20 dB
        of echo let through for a few hundred ms). Both sinks run on the
        server's one clock, so nothing drifts without it."""
        index = self.load_module(
            "module-loopback",
            f"source={SPEAKER_SINK}.monitor",
            f"sink={MIC_SINK}",
            f"latency_msec={latency_ms}",
            "source_dont_move=true",
            "sink_dont_move=true",
            "adjust_time=0",
        )
        self._extra_modules.append(index)
        deadline = time.monotonic() + 5
        while True:
            mine = [
                item["index"]
                for item in self._listing("sink-inputs")
                if str(item.get("owner_module")) == str(index)
            ]
            if mine:
                self._pactl("set-sink-input-volume", str(mine[0]), f"{volume_percent}%")
                return index
            if time.monotonic() > deadline:
                raise RuntimeError("the loopback module has no sink input")
            time.sleep(0.05)

    def _cli(self, command: str) -> None:
        """A command on the server's CLI socket (what ``pacmd`` speaks; pacmd
        itself insists on a pid file this server does not write)."""
        assert self._directory is not None
        with socket.socket(socket.AF_UNIX) as cli:
            cli.settimeout(5)
            cli.connect(str(self._directory / "runtime" / "pulse" / "cli"))
            cli.sendall(command.encode() + b"\n")
            cli.shutdown(socket.SHUT_WR)  # the server ends the session at end of input
            while cli.recv(4096):
                pass

    def _pactl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", f"--server=unix:{self.socket}", *arguments],
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    # --- sound in and out ---------------------------------------------------------

    def play(self, samples: Samples, sink: str = MIC_SINK, *, loop: bool = False) -> Player:
        """Play mono 48 kHz samples into ``sink`` (the microphone's by default)."""
        process = subprocess.Popen(
            ["pacat", "--playback", f"--server=unix:{self.socket}", "-d", sink,
             *_PCM_FORMAT, "--latency-msec=20"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        player = Player(process, samples, loop)
        self._children.append(player)
        return player

    def record(self, sink: str = SPEAKER_SINK) -> Recording:
        """Record what is played on ``sink`` (the speaker's by default)."""
        process = subprocess.Popen(
            ["parec", f"--server=unix:{self.socket}", "-d", f"{sink}.monitor",
             *_PCM_FORMAT, "--latency-msec=10"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        recording = Recording(process)
        self._children.append(recording)
        return recording

    @contextlib.contextmanager
    def recording(self, sink: str = SPEAKER_SINK) -> Iterator[Recording]:
        recording = self.record(sink)
        try:
            yield recording
        finally:
            recording.stop()
