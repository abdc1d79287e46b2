"""The lifecycle's named actions for the online part: the socket, the viewers'
sessions, the camera and the door's audio.

Calls outlive the socket (protocol.md 3.3): going offline closes the socket
and tells every session (a call whose media flows is held, one still setting
up closes) and starts the grace timer; coming back tells them again. The
camera and the audio devices stay open while a call holds them.
"""

from __future__ import annotations

from typing import Any

from intercom_fsm import events as ev
from intercom_fsm.effects import Timer
from intercom_fsm.machine.context import Context
from intercom_fsm.machine.rows import Action
from intercom_fsm.machine.session import SignalingLost, SignalingRestored


def note_online(ctx: Context, _event: object) -> None:
    ctx.online_since = ctx.monotonic()
    ctx.backoff.succeeded(ctx.monotonic())
    ctx.cancel(Timer.ORPHAN_GRACE)
    ctx.viewers.tell_all(SignalingRestored())


def go_offline(ctx: Context, event: object) -> None:
    """Close the socket; held calls go on for the grace period."""
    reason = getattr(event, "reason", "") or type(event).__name__
    ctx.close_socket(reason)
    ctx.online_since = None
    ctx.viewers.tell_all(SignalingLost())
    if len(ctx.viewers) and not ctx.is_pending(Timer.ORPHAN_GRACE):
        ctx.schedule(Timer.ORPHAN_GRACE, ctx.settings.session_orphan_grace)


def end_held_calls(ctx: Context, event: ev.OrphanGraceElapsed) -> None:
    ctx.viewers.tell_all(event)


def end_every_call(ctx: Context, event: object) -> None:
    reason = "logout" if isinstance(event, ev.LogoutRequested) else "shutdown"
    ctx.viewers.release_all(reason)
    ctx.cancel(Timer.ORPHAN_GRACE)


def note_refusal(ctx: Context, _event: object) -> None:
    stable = ctx.settings.backoff.stable_after
    if ctx.online_since is not None and ctx.monotonic() - ctx.online_since >= stable:
        ctx.sockets_refused_in_a_row = 0
    ctx.sockets_refused_in_a_row += 1
    ctx.token_refused = True


def close_media(ctx: Context, _event: object) -> None:
    ctx.close_media()


# --- viewers ------------------------------------------------------------------------


def admit_offer(ctx: Context, event: ev.OfferReceived) -> None:
    ctx.viewers.offer(event)


def deliver_to_session(ctx: Context, event: Any) -> None:
    ctx.viewers.deliver(event)


def note_peer_connected(ctx: Context, event: ev.PeerConnected) -> None:
    # Media flows with this access token: a later refusal is a first one.
    ctx.sockets_refused_in_a_row = 0
    ctx.viewers.deliver(event)


def report_unknown_session(ctx: Context, event: ev.HangupReceived | ev.RemoteIceCandidate) -> None:
    # From the backend: worth a line (a misrouted viewer, a backend bug).
    kind = "hangup" if isinstance(event, ev.HangupReceived) else "ICE candidate"
    ctx.report("unknown_session", f"{kind} for unknown viewer session {event.session!r} ignored")


# --- signaling input -------------------------------------------------------------------


def report_invalid_message(ctx: Context, event: ev.InvalidMessage) -> None:
    kind = f"{event.message_type!r} message" if event.message_type else "message"
    ctx.report("invalid_message", f"dropped signaling {kind}: {event.problem}")


def report_unknown_once(ctx: Context, event: ev.UnknownMessage) -> None:
    reported = ctx.unknown_types_reported
    if event.message_type in reported:
        return
    if len(reported) < ctx.settings.max_unknown_types:
        reported.add(event.message_type)
        ctx.report(
            "unknown_message",
            f"ignoring signaling messages of unknown type {event.message_type!r}",
        )
    else:
        ctx.report(
            "unknown_message",
            f"ignoring signaling messages of unknown type {event.message_type[:40]!r}"
            f" (more than {ctx.settings.max_unknown_types} unknown types)",
        )


# --- devices -----------------------------------------------------------------------------


def _device_status(device: str, failed: type[Any], offline_words: str) -> Action[Context]:
    """The action for a device's opened, failed and recovered events: it keeps
    ``<device>_online`` and says once why the device went away (the adapter
    tells a failure once per outage)."""

    def note(ctx: Context, event: Any) -> None:
        online = not isinstance(event, failed)
        setattr(ctx, f"{device}_online", online)
        if not online:
            ctx.report(device, f"{device} {offline_words}: {event.reason}")

    note.__name__ = f"note_{device}"
    return note


note_camera = _device_status("camera", ev.CameraFailed, "offline")
note_microphone = _device_status("microphone", ev.MicrophoneFailed, "unavailable, video goes on")
note_speaker = _device_status("speaker", ev.SpeakerFailed, "unavailable, video goes on")
