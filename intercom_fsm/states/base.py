"""The lifecycle's state names and the shape of a state's description.

Each state has its own module in this package that says what the state means
and what it asks the outside world to do when the machine enters or leaves it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


class State(enum.StrEnum):
    IDLE = "Idle"
    UNAUTHORIZED = "Unauthorized"
    AWAITING_APPROVAL = "AwaitingApproval"
    AUTHORIZED = "Authorized"
    CONNECTING = "Connecting"
    NEGOTIATING = "Negotiating"
    STREAMING = "Streaming"
    BACKOFF = "Backoff"
    STOPPED = "Stopped"


StateAction = Callable[["Context"], None]


@attrs.frozen
class StateSpec:
    """A state's entry and exit requests; its module's docstring says what it means."""

    state: State
    on_enter: StateAction | None = None
    on_exit: StateAction | None = None
    final: bool = False
