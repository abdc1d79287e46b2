"""The daemon's wiring builds each adapter's own settings from the configuration."""

from __future__ import annotations

import json
from pathlib import Path

from intercom_fsm.adapters.auth import default_device_os
from intercom_fsm.adapters.peer import IceServer
from intercom_fsm.config import HealthAddress, load_config
from intercom_fsm.daemon.app import (
    auth_settings,
    camera_settings,
    config_secrets,
    operations_from_config,
    peer_settings,
    signaling_settings,
)

SECRET = "s3cret-value-for-the-wiring"
TURN_CREDENTIAL = "turn-credential-for-the-wiring"
BASE = {
    "HTTP_API_BASE_URL": "https://api.example.com",
    "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
    "OAUTH_CLIENT_ID": "id",
}


def test_auth_settings_come_from_the_oauth_rows(tmp_path: Path) -> None:
    config = load_config(
        {**BASE, "OAUTH_CLIENT_SECRET": SECRET, "HTTP_TIMEOUT_SECONDS": "3.5"},
        oauth_file=tmp_path / "none.json",
    )
    settings = auth_settings(config)
    assert settings.http_base_url == "https://api.example.com"
    assert settings.timeout == 3.5
    assert settings.client_secret == SECRET
    assert SECRET not in repr(settings)
    assert settings.device_os == default_device_os()
    named = auth_settings(load_config({**BASE, "DEVICE_OS": "X-1-y"}, oauth_file=None))
    assert named.device_os == "X-1-y"


def test_peer_settings_carry_the_ice_servers(tmp_path: Path) -> None:
    turn = {"urls": "turn:t.example.com", "username": "u", "credential": TURN_CREDENTIAL}
    config = load_config(
        {**BASE, "ICE_SERVERS": json.dumps([turn]), "VIDEO_CODEC": "h264"}, oauth_file=None
    )
    settings = peer_settings(config)
    assert settings.ice_servers == (
        IceServer(("turn:t.example.com",), username="u", credential=TURN_CREDENTIAL),
    )
    assert settings.codec == "h264"
    assert settings.relay_only is False
    assert TURN_CREDENTIAL not in repr(settings)
    relayed = load_config(
        {**BASE, "ICE_SERVERS": json.dumps([turn]), "ICE_TRANSPORT_POLICY": "relay"},
        oauth_file=None,
    )
    assert peer_settings(relayed).relay_only is True


def test_signaling_camera_and_operations_settings() -> None:
    config = load_config(
        {
            **BASE,
            "WEBSOCKET_API_BASE_URL": "ws://127.0.0.1:8000/",
            "VIDEO_SOURCE": "testsrc",
            "VIDEO_WIDTH": "640",
            "VIDEO_SHARED_ENCODER": "0",
            "HEALTH_ADDRESS": "127.0.0.1:9108",
            "HEALTH_STUCK_SECONDS": "60",
        },
        oauth_file=None,
    )
    assert signaling_settings(config).ws_base_url == "ws://127.0.0.1:8000"
    camera = camera_settings(config)
    assert (camera.source, camera.width, camera.shared_encoder) == ("testsrc", 640, False)
    operations = operations_from_config(config, {"NOTIFY_SOCKET": "/run/notify"})
    assert operations.health_address == HealthAddress("127.0.0.1", 9108)
    assert operations.stuck_seconds == 60
    assert operations.notify_socket == "/run/notify"


def test_turn_credentials_are_secrets_like_the_client_secret() -> None:
    turn = {"urls": "turn:t.example.com", "username": "turn-user", "credential": TURN_CREDENTIAL}
    config = load_config(
        {**BASE, "OAUTH_CLIENT_SECRET": SECRET, "ICE_SERVERS": json.dumps([turn])},
        oauth_file=None,
    )
    assert set(config_secrets(config)) == {SECRET, "turn-user", TURN_CREDENTIAL}
