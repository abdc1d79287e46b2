"""The Django app config of the sandbox backend."""

from __future__ import annotations

from django.apps import AppConfig


# Django ships no type information, so its classes are Any to mypy.
class SandboxConfig(AppConfig):  # type: ignore[misc]
    name = "intercom_fsm.sandbox.backend"
    label = "sandbox"
    verbose_name = "Intercom sandbox"
    default_auto_field = "django.db.models.BigAutoField"
