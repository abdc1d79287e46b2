"""What the sandbox sets up in its database before it listens: tables, demo user, OAuth client.

With a reused ``--state-dir``, devices keep their grants across restarts: the
OAuth application recorded in ``oauth.json`` is kept when it still exists and
has the asked-for client type. The demo user gets a fresh password each start.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from oauth2_provider.models import get_application_model

from intercom_fsm.sandbox.files import read_json_object, write_private_json
from intercom_fsm.sandbox.options import DEMO_USERNAME, OAUTH_CLIENT_FILE

APPLICATION_NAME = "Intercom devices"


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None  # None for a public client


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str


def create_tables() -> None:
    # run_syncdb creates the sandbox app's table, which has no migrations.
    call_command("migrate", run_syncdb=True, interactive=False, verbosity=0)


def reset_demo_user() -> DemoUser:
    password = secrets.token_urlsafe(9)
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    user.set_password(password)
    user.save()
    return DemoUser(username=DEMO_USERNAME, password=password)


def _reusable(application_model: Any, recorded: dict[str, Any] | None, public: bool) -> bool:
    if recorded is None or not isinstance(recorded.get("client_id"), str):
        return False
    application = application_model.objects.filter(client_id=recorded["client_id"]).first()
    if application is None:
        return False
    wanted = application_model.CLIENT_PUBLIC if public else application_model.CLIENT_CONFIDENTIAL
    has_secret = isinstance(recorded.get("client_secret"), str)
    return bool(application.client_type == wanted) and has_secret != public


def device_application(state_dir: Path, *, public: bool) -> ClientCredentials:
    """The devices' OAuth client, written to ``<state_dir>/oauth.json`` (mode 0600)."""
    application_model = get_application_model()
    path = state_dir / OAUTH_CLIENT_FILE
    recorded = read_json_object(path)
    if recorded is not None and _reusable(application_model, recorded, public):
        return ClientCredentials(recorded["client_id"], recorded.get("client_secret"))
    # DOT hashes the secret when saving, so it is generated here to be handed out.
    secret = secrets.token_urlsafe(32)
    application = application_model.objects.create(
        name=APPLICATION_NAME,
        client_type=application_model.CLIENT_PUBLIC
        if public
        else application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_DEVICE_CODE,
        client_secret=secret,
        redirect_uris="",
    )
    credentials = ClientCredentials(application.client_id, None if public else secret)
    write_private_json(
        path, {"client_id": credentials.client_id, "client_secret": credentials.client_secret}
    )
    return credentials
