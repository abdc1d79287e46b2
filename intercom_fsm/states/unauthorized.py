"""Unauthorized: the device holds no grant and starts a device flow.

On entry: any earlier device flow is forgotten and the auth adapter is asked
for a new device code (``RequestDeviceCode``, protocol.md 1.1).
Leaves on ``DeviceCodeIssued`` (to AwaitingApproval) or a transient error
(to Backoff, resuming here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercom_fsm.effects import RequestDeviceCode
from intercom_fsm.states.base import State, StateSpec

if TYPE_CHECKING:
    from intercom_fsm.machine.context import Context


def request_device_code(ctx: Context) -> None:
    ctx.flow = None
    ctx.emit(RequestDeviceCode())


SPEC = StateSpec(
    state=State.UNAUTHORIZED,
    on_enter=request_device_code,
)
