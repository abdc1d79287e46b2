"""The daemon's Prometheus metrics, read from the machine at scrape time.

:class:`MachineCollector` is a prometheus-client custom collector;
:func:`build_registry` puts it in a registry of its own (not prometheus-client's
global one, so an embedding product's metrics never mix with these), beside
the process's memory, CPU and open files. ``/metrics`` in
:mod:`intercom_fsm.daemon.health` serves that registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from intercom_fsm._version import __version__
from intercom_fsm.daemon.health import StateTracker, held_viewers, streaming_viewers
from intercom_fsm.daemon.notify import LoopMonitor
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State

METRIC_PREFIX = "intercom_fsm"


class CameraCounters(Protocol):
    """What the metrics read from a camera; the camera adapter's
    ``CameraStats`` fits, and so does an embedding product's own."""

    @property
    def frames_delivered(self) -> int: ...

    @property
    def frames_dropped(self) -> int: ...

    @property
    def online(self) -> bool: ...


CameraStatsSource = Callable[[], CameraCounters]
AudioStatsSource = Callable[[], object]
"""The audio adapter's ``AudioStats`` (or an embedding product's own with
the same field names): read by name, what is missing is left out."""


class MachineCollector:
    """The daemon's metrics, read at scrape time (a prometheus-client
    custom collector)."""

    def __init__(
        self,
        machine: LifecycleMachine,
        tracker: StateTracker,
        monitor: LoopMonitor,
        camera_stats: CameraStatsSource | None = None,
        peer_count: Callable[[], int] | None = None,
        audio_stats: AudioStatsSource | None = None,
    ) -> None:
        self._machine = machine
        self._audio_stats = audio_stats
        self._tracker = tracker
        self._monitor = monitor
        self._camera_stats = camera_stats
        self._peer_count = peer_count

    def collect(self) -> Iterable[Metric]:
        yield from self._lifecycle()
        yield from self._counters()
        yield from self._audio()
        yield from self._camera()
        yield InfoMetricFamily(f"{METRIC_PREFIX}_build", "Version.", {"version": __version__})
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran its last periodic tick.",
            self._monitor.current_lag(),
        )
        yield from self._resources()

    def _resources(self) -> Iterator[Metric]:
        """What a leak would grow: the loop's tasks and the open peers."""
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped off the loop's thread: not countable
            tasks = None
        if tasks is not None:
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_asyncio_tasks", "Tasks alive on the event loop.", tasks
            )
        if self._peer_count is not None:
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_peer_connections",
                "WebRTC peer connections held by the peer adapter.",
                self._peer_count(),
            )

    def _lifecycle(self) -> Iterator[Metric]:
        tracker = self._tracker
        state = GaugeMetricFamily(
            f"{METRIC_PREFIX}_state", "1 for the current lifecycle state.", labels=["state"]
        )
        for candidate in State:
            state.add_metric([candidate.value], 1.0 if candidate is tracker.state else 0.0)
        yield state
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_state_seconds",
            "Seconds since the machine entered its current state.",
            tracker.seconds_in_state(),
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_unavailable_seconds",
            "Seconds since the machine was last in Negotiating or Streaming; 0 while it is.",
            tracker.seconds_unavailable(),
        )
        transitions = CounterMetricFamily(
            f"{METRIC_PREFIX}_transitions",
            "Lifecycle state changes, by from and to.",
            labels=["from", "to"],
        )
        for (source, dest), count in sorted(tracker.transitions.items()):
            transitions.add_metric([source, dest], count)
        yield transitions
        sessions = self._machine.sessions
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_viewers", "Viewer sessions, in any state.", len(sessions)
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_streaming_viewers",
            "Viewer sessions whose peer is connected.",
            streaming_viewers(sessions),
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_held_viewers",
            "Calls whose media flows while the signaling socket is gone (protocol.md 3.3).",
            held_viewers(sessions),
        )
        if tracker.last_failure is not None and tracker.last_failure_at is not None:
            yield InfoMetricFamily(
                f"{METRIC_PREFIX}_last_error",
                "Why the machine last went to Backoff.",
                {"reason": tracker.last_failure},
            )
            yield GaugeMetricFamily(
                f"{METRIC_PREFIX}_last_error_timestamp_seconds",
                "When the machine last went to Backoff (seconds since the epoch).",
                tracker.last_failure_at,
            )

    def _counters(self) -> Iterator[Metric]:
        counters = self._machine.counters
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_reconnects",
            "Signaling sockets opened after the first one.",
            max(0, counters.sockets_opened - 1),
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_token_refreshes",
            "Access token refreshes requested.",
            counters.refreshes,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_calls_held",
            "Calls that kept their media when the signaling socket went away.",
            counters.sessions_held,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_calls_resumed",
            "Held calls that the signaling socket reached again after a reconnect.",
            counters.sessions_resumed,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_events", "Events the machine handled.", counters.events
        )
        ignored = CounterMetricFamily(
            f"{METRIC_PREFIX}_ignored_events",
            "Events that meant nothing in the state they arrived in.",
            labels=["state", "event"],
        )
        for key, count in sorted(counters.ignored.items()):
            state, _, event = key.partition(":")
            ignored.add_metric([state, event], count)
        yield ignored

    def _camera(self) -> Iterator[Metric]:
        if self._camera_stats is None:
            return
        stats = self._camera_stats()
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_frames_sent",
            "Frames handed to viewers' tracks, summed over viewers.",
            stats.frames_delivered,
        )
        yield CounterMetricFamily(
            f"{METRIC_PREFIX}_frames_dropped",
            "Frames a slow viewer never got because a newer one replaced them.",
            stats.frames_dropped,
        )
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_camera_online",
            "1 while the camera source works.",
            1.0 if stats.online else 0.0,
        )
        yield from _media_path(stats)

    def _audio(self) -> Iterator[Metric]:
        if self._audio_stats is None:
            return
        stats = self._audio_stats()
        for name, documentation in _AUDIO_COUNTERS:
            value = getattr(stats, name, None)
            if isinstance(value, int):
                yield CounterMetricFamily(f"{METRIC_PREFIX}_audio_{name}", documentation, value)
        for name, documentation in _AUDIO_GAUGES:
            value = getattr(stats, name, None)
            if isinstance(value, bool | int | float):
                yield GaugeMetricFamily(
                    f"{METRIC_PREFIX}_audio_{name}", documentation, float(value)
                )


_AUDIO_COUNTERS = (
    ("packets_sent", "Opus packets handed to listening viewers, summed over viewers."),
    ("packets_encoded", "Opus packets the microphone's one encoding made."),
    ("packets_received", "Audio frames received from talking viewers."),
    ("packets_dropped", "Packets a listener never got because it fell behind."),
    ("underruns", "Times a talker's playout buffer ran dry (silence played)."),
    ("drift_corrections", "Blocks played faster or slower, or sound dropped, to hold the depth."),
    ("capture_overruns", "Times the microphone's ALSA buffer overflowed."),
    ("playback_underruns", "Times the speaker's ALSA buffer ran dry."),
    ("reference_resyncs", "Times the echo canceller's reference was realigned with the speaker."),
)
_AUDIO_GAUGES = (
    ("playout_depth_ms", "The deepest talker's playout buffer, in ms."),
    ("erle_db", "Echo return loss enhancement of the canceller while the speaker plays, in dB."),
    ("talking_viewers", "Viewers whose voices play on the door's speaker."),
    ("listening_viewers", "Viewers hearing the door's microphone."),
    ("microphone_online", "1 while the microphone captures."),
    ("speaker_online", "1 while the speaker plays."),
)


_MEDIA_COUNTERS = (
    ("pictures_decoded", "Pictures the capture decoded (none while every viewer takes the"
     " camera's own H.264)."),
    ("passthrough_packets", "Access units of the camera's own H.264 handed to its viewers."),
    ("passthrough_frames_not_sent", "Frames of the camera's own H.264 a viewer's backed-up"
     " way out did not take (it went on at the next IDR)."),
    ("shared_pictures_encoded", "Pictures the shared VP8 encoding encoded, once for all."),
    ("shared_h264_pictures_encoded", "Pictures the shared H.264 encoder encoded, once for all."),
    ("h264_encoder_fallbacks", "Times a hardware H.264 encoder failed and software took over."),
)  # fmt: skip


def _media_path(stats: CameraCounters) -> Iterator[Metric]:
    """The camera adapter's media path; an embedding product's camera may
    have none of it."""
    for name, documentation in _MEDIA_COUNTERS:
        value = getattr(stats, name, None)
        if isinstance(value, int):
            yield CounterMetricFamily(f"{METRIC_PREFIX}_{name}", documentation, value)
    viewers = getattr(stats, "passthrough_viewers", None)
    if isinstance(viewers, int):
        yield GaugeMetricFamily(
            f"{METRIC_PREFIX}_passthrough_viewers",
            "Viewers receiving the camera's own H.264 packets.",
            viewers,
        )
    encoder = getattr(stats, "h264_encoder", None)
    if isinstance(encoder, str):
        hardware = "1" if getattr(stats, "h264_encoder_hardware", False) else "0"
        yield InfoMetricFamily(
            f"{METRIC_PREFIX}_h264_encoder",
            "The shared H.264 encoder in use, and whether it is the board's hardware.",
            {"encoder": encoder, "hardware": hardware},
        )


def build_registry(collector: MachineCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    # Memory, CPU and open files of the daemon itself, read from /proc.
    ProcessCollector(namespace=METRIC_PREFIX, registry=registry)
    return registry
