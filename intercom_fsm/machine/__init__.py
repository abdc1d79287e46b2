"""The lifecycle machine and its parts: context, backoff, tables, guards and
actions, the viewer sessions."""

from intercom_fsm.machine.backoff import Backoff, BackoffPolicy
from intercom_fsm.machine.context import Clock, Context, MachineSettings, Random
from intercom_fsm.machine.lifecycle import LifecycleMachine, TransitionRecord
from intercom_fsm.machine.session import SessionState

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "Clock",
    "Context",
    "LifecycleMachine",
    "MachineSettings",
    "Random",
    "SessionState",
    "TransitionRecord",
]
