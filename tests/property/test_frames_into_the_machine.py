"""Arbitrary signaling frames, parsed at the edge and fed to a streaming
machine: nothing raises, the socket is never closed by a frame, and the viewer
that streams keeps streaming unless a frame names its own session."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_fsm import effects as fx
from intercom_fsm import events as ev
from intercom_fsm.adapters.signaling_messages import parse_frame
from intercom_fsm.machine.lifecycle import LifecycleMachine
from intercom_fsm.states import State
from intercom_fsm.testing import FakeClock, ResourceLedger, happy_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["offer", "ice", "hangup", "answer", "bye", ""])
        | st.text(max_size=6)
    },
    optional={
        "sdp": st.sampled_from(["v=0\r\n", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"])
        | json_values,
        "session": st.sampled_from(["", "other", "third"]) | json_values,
        "candidate": json_values,
    },
)
frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    json_values.map(json.dumps),
    shaped.map(json.dumps),
)


def streaming_machine() -> tuple[LifecycleMachine, ResourceLedger]:
    machine = LifecycleMachine(clock=FakeClock(), random=random.Random(3).random)
    ledger = ResourceLedger()
    while machine.state is not State.STREAMING:
        event = happy_event(machine, ledger)
        assert event is not None
        ledger.record(event, machine.handle(event))
    return machine, ledger


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(frames, min_size=1, max_size=20))
def test_arbitrary_frames_never_break_the_machine_or_the_socket(
    batch: list[str | bytes],
) -> None:
    machine, ledger = streaming_machine()
    for frame in batch:
        event = parse_frame(frame)
        effects = machine.handle(event)
        ledger.record(event, effects)
        assert not any(isinstance(effect, fx.CloseSocket) for effect in effects)
    assert machine.state in (State.STREAMING, State.NEGOTIATING)
    assert ledger.sockets_open == 1
    if machine.state is State.NEGOTIATING:
        # Only an offer or a hangup for the streaming viewer's own session
        # (the default one) can take it away.
        assert ev.DEFAULT_SESSION not in machine.sessions or (
            machine.sessions[ev.DEFAULT_SESSION] != "Connected"
        )
