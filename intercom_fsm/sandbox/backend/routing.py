"""The ASGI application: Django for HTTP, Channels consumers for the two WebSockets."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

DEVICE_CODE = r"(?P<device_code>[A-Za-z0-9_-]{1,80})"


def build_application() -> Any:
    """The whole sandbox as one ASGI app; Django must be configured first."""
    http = get_asgi_application()
    from intercom_fsm.sandbox.backend.consumers import DeviceConsumer, ViewerConsumer

    # Sessions are resolved lazily, so the device socket never pays for the viewer's auth.
    return ProtocolTypeRouter(
        {
            "http": http,
            "websocket": AuthMiddlewareStack(
                URLRouter(
                    [
                        re_path(rf"^ws/live_stream/{DEVICE_CODE}/$", DeviceConsumer.as_asgi()),
                        re_path(rf"^ws/view/{DEVICE_CODE}/$", ViewerConsumer.as_asgi()),
                    ]
                )
            ),
        }
    )
