"""What the sandbox stores beside django-oauth-toolkit's own tables.

DOT's ``DeviceGrant`` keeps the device code, user code and approval status,
but not the ``device_type``/``device_os`` a device sends, and its access tokens
do not say which device flow produced them. :class:`DeviceRecord` holds both:
the fields, and the refresh-token family of the grant the flow produced (DOT
carries one family id through every rotation), which is how a bearer token is
traced back to the device code that names its stream.

The table is created with ``migrate --run-syncdb`` (the app has no migrations).
"""

from __future__ import annotations

from django.db import models


class DeviceRecord(models.Model):  # type: ignore[misc]
    device_code = models.CharField(max_length=100, unique=True)
    device_type = models.CharField(max_length=100)
    device_os = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    # Set when the device code is exchanged for tokens; a device code is used once.
    token_family = models.UUIDField(null=True, blank=True, unique=True)
    tokens_issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"{self.device_type} ({self.device_os})"
