"""intercom-fsm: the device-side client of an intercom camera.

The public API is the lifecycle machine (no I/O: feed it events, carry out the
effects it returns), its events and effects, and the states.
"""

from intercom_fsm import effects, events
from intercom_fsm._version import __version__
from intercom_fsm.machine import (
    BackoffPolicy,
    LifecycleMachine,
    MachineSettings,
    SessionState,
    TransitionRecord,
)
from intercom_fsm.states import State

__all__ = [
    "BackoffPolicy",
    "LifecycleMachine",
    "MachineSettings",
    "SessionState",
    "State",
    "TransitionRecord",
    "__version__",
    "effects",
    "events",
]
