"""The sandbox's HTTP routes (the WebSocket routes are in :mod:`.routing`)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from intercom_fsm.sandbox.backend import control_views, oauth_views, page_views

control = [
    path("devices/", control_views.devices),
    path("devices/approve/", control_views.approve),
    path("devices/deny/", control_views.deny),
    path("devices/expire-access-tokens/", control_views.expire_access_tokens),
    path("devices/revoke-refresh-token/", control_views.revoke_refresh_token),
    path("devices/close-socket/", control_views.close_socket),
    path("devices/send/", control_views.send),
    path("faults/", control_views.inject_fault),
    path("faults/clear/", control_views.clear_faults),
    path("messages/", control_views.messages),
    path("messages/clear/", control_views.clear_messages),
]

urlpatterns = [
    path("oauth/device-authorization/", oauth_views.device_authorization),
    path("oauth/token/", oauth_views.token),
    path("", page_views.monitor, name="monitor"),
    path("device/", page_views.monitor, name="verification"),
    path("api/devices/", page_views.device_list),
    path("api/devices/decide/", page_views.decide),
    path("assets/<str:name>", page_views.asset),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="sandbox/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sandbox/control/", include(control)),
]
