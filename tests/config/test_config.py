"""Configuration from environment variables."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from intercom_fsm.config import (
    ENVIRONMENT_VARIABLES,
    Config,
    ConfigError,
    IceServerEntry,
    IceTransportPolicy,
    LogFormat,
    Setting,
    VideoCodec,
    load_config,
)
from intercom_fsm.config_docs import environment_table_markdown, envrc_example

SECRET = "client-secret-do-not-print-7781"
BASE = {
    "HTTP_API_BASE_URL": "https://api.example.com",
    "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
    "OAUTH_CLIENT_ID": "intercom-device",
}


def load(tmp_path: Path, **variables: str) -> Config:
    environ = {**BASE, **variables}
    environ = {name: value for name, value in environ.items() if value != "<unset>"}
    return load_config(environ, oauth_file=tmp_path / "missing-oauth.json")


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load(tmp_path)
    assert config.endpoints.http_base_url == "https://api.example.com"
    assert config.endpoints.websocket_base_url == "wss://api.example.com"
    assert config.endpoints.allow_insecure_transport is False
    assert config.oauth.client_id == "intercom-device"
    assert config.oauth.client_secret is None
    assert config.oauth.scope is None
    assert config.oauth.device_type == "camera"
    assert config.oauth.device_os is None  # the auth adapter sends this machine's
    assert config.token_file == tmp_path / ".config/intercomclient/tokens.json"
    assert config.video.source == "0"
    assert (config.video.width, config.video.height, config.video.fps) == (320, 240, 5.0)
    assert config.video.codec is VideoCodec.AUTO
    assert config.video.bitrate is None
    assert config.webrtc.ice_servers == ()
    assert config.webrtc.ice_transport_policy is IceTransportPolicy.ALL
    assert config.webrtc.max_viewers == 4
    assert (config.backoff.base_seconds, config.backoff.cap_seconds) == (1.0, 60.0)
    assert config.http_timeout_seconds == 10.0
    assert config.logging.level == "INFO"
    assert config.logging.format is LogFormat.TEXT


def test_every_setting_is_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        HTTP_API_BASE_URL="https://api.example.com/intercom/",
        WEBSOCKET_API_BASE_URL="wss://ws.example.com/",
        OAUTH_CLIENT_SECRET=SECRET,
        OAUTH_SCOPE="  stream   read ",
        DEVICE_TYPE="doorbell",
        DEVICE_OS="Linux-6.1-aarch64",
        TOKEN_FILE_PATH=str(tmp_path / "t.json"),
        VIDEO_SOURCE="rtsp://camera.local/stream",
        VIDEO_WIDTH="640",
        VIDEO_HEIGHT="480",
        VIDEO_FPS="29.97",
        VIDEO_CODEC="H264",
        VIDEO_BITRATE="800000",
        ICE_SERVERS="stun:stun.example.com:3478, stun:stun2.example.com",
        MAX_VIEWERS="32",
        BACKOFF_BASE_SECONDS="0.5",
        BACKOFF_CAP_SECONDS="0.5",
        HTTP_TIMEOUT_SECONDS="2.5",
        LOG_LEVEL="debug",
        LOG_FORMAT="json",
    )
    assert config.endpoints.http_base_url == "https://api.example.com/intercom"
    assert config.endpoints.websocket_base_url == "wss://ws.example.com"
    assert config.oauth.client_secret == SECRET
    assert SECRET not in repr(config)
    assert config.oauth.scope == "stream read"
    assert config.oauth.device_type == "doorbell"
    assert config.oauth.device_os == "Linux-6.1-aarch64"
    assert config.token_file == tmp_path / "t.json"
    assert config.video.source == "rtsp://camera.local/stream"
    assert (config.video.width, config.video.height, config.video.fps) == (640, 480, 29.97)
    assert config.video.codec is VideoCodec.H264
    assert config.video.bitrate == 800_000
    assert config.webrtc.ice_servers == (
        IceServerEntry(urls=("stun:stun.example.com:3478",)),
        IceServerEntry(urls=("stun:stun2.example.com",)),
    )
    assert config.webrtc.max_viewers == 32
    assert config.backoff.cap_seconds == 0.5
    assert config.http_timeout_seconds == 2.5
    assert config.logging.level == "DEBUG"
    assert config.logging.format is LogFormat.JSON


def test_empty_values_mean_default(tmp_path: Path) -> None:
    config = load(tmp_path, VIDEO_WIDTH="", VIDEO_FPS="  ", ICE_SERVERS="")
    assert config.video.width == 320
    assert config.video.fps == 5.0
    assert config.webrtc.ice_servers == ()


def test_ice_servers_json_with_turn_credentials(tmp_path: Path) -> None:
    servers = [
        {"urls": "stun:stun.example.com"},
        {
            "urls": ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
            "username": "device",
            "credential": SECRET,
        },
    ]
    config = load(tmp_path, ICE_SERVERS=json.dumps(servers))
    stun, turn = config.webrtc.ice_servers
    assert stun == IceServerEntry(urls=("stun:stun.example.com",))
    assert turn.urls == ("turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349")
    assert (turn.username, turn.credential) == ("device", SECRET)
    assert SECRET not in repr(config)
    relayed = load(tmp_path, ICE_SERVERS=json.dumps(servers), ICE_TRANSPORT_POLICY="relay")
    assert relayed.webrtc.ice_transport_policy is IceTransportPolicy.RELAY
    with pytest.raises(ConfigError, match="relay needs a turn: or turns: server"):
        load(tmp_path, ICE_SERVERS="stun:stun.example.com", ICE_TRANSPORT_POLICY="relay")


# --- Every variable with a wrong value -----------------------------------------------------

BAD_VALUES: list[tuple[str, str, str]] = [
    ("HTTP_API_BASE_URL", "<unset>", "required"),
    ("HTTP_API_BASE_URL", "ftp://api.example.com", "https://"),
    ("HTTP_API_BASE_URL", "https://", "no host"),
    ("HTTP_API_BASE_URL", "https://api.example.com:99999", "not a valid URL"),
    ("HTTP_API_BASE_URL", "https://user:pw@api.example.com", "credentials"),
    ("HTTP_API_BASE_URL", "https://api.example.com/?x=1", "query"),
    ("HTTP_API_BASE_URL", "http://api.example.com", "ALLOW_INSECURE_TRANSPORT"),
    ("WEBSOCKET_API_BASE_URL", "<unset>", "required"),
    ("WEBSOCKET_API_BASE_URL", "https://api.example.com", "wss://"),
    ("WEBSOCKET_API_BASE_URL", "ws://10.0.0.5:8000", "unencrypted"),
    ("ALLOW_INSECURE_TRANSPORT", "maybe", "1 or 0"),
    ("OAUTH_CLIENT_ID", "<unset>", "required"),
    ("OAUTH_CLIENT_ID", "bad\tid", "printable ASCII"),
    ("OAUTH_CLIENT_SECRET", "s\u00e9cret" + SECRET, "printable ASCII"),
    ("OAUTH_SCOPE", 'stream "read"', "forbids"),
    ("DEVICE_TYPE", "cam\u00e9ra", "printable ASCII"),
    ("DEVICE_OS", "Linux\x01", "printable ASCII"),
    ("TOKEN_FILE_PATH", "/tmp/", "directory"),
    ("VIDEO_WIDTH", "wide", "whole number"),
    ("VIDEO_WIDTH", "8", "between 16 and 4096"),
    ("VIDEO_WIDTH", "321", "even"),
    ("VIDEO_HEIGHT", "5000", "between 16 and 4096"),
    ("VIDEO_HEIGHT", "241", "even"),
    ("VIDEO_FPS", "0", "> 0"),
    ("VIDEO_FPS", "61", "<= 60"),
    ("VIDEO_FPS", "nan", "> 0"),
    ("VIDEO_FPS", "fast", "a number"),
    ("VIDEO_CODEC", "av1", "auto, vp8, h264"),
    ("VIDEO_BITRATE", "1Mbit", "whole number"),
    ("VIDEO_BITRATE", "10", "between"),
    ("VIDEO_SHARED_ENCODER", "maybe", "must be 1 or 0"),
    ("ICE_SERVERS", "[not json", "not valid JSON"),
    ("ICE_SERVERS", '{"urls": "stun:x"}', "stun:, turn: or turns:"),
    ("ICE_SERVERS", '[{"url": "stun:x"}]', "unknown key"),
    ("ICE_SERVERS", '[{"urls": []}]', "non-empty list"),
    ("ICE_SERVERS", '[{"urls": [5]}]', "must be a string"),
    ("ICE_SERVERS", '[{"urls": "turn:t.example.com"}]', "needs 'username' and 'credential'"),
    ("ICE_SERVERS", '[{"urls": "stun:x", "username": 1}]', "'username' must be a string"),
    ("ICE_SERVERS", '["stun:x"]', "must be an object"),
    ("ICE_SERVERS", "http://stun.example.com", "stun:, turn: or turns:"),
    ("ICE_SERVERS", "turn:turn.example.com", "use the JSON form"),
    ("ICE_SERVERS", "stun:", "with a host"),
    ("ICE_TRANSPORT_POLICY", "turn-only", "one of all, relay"),
    ("ICE_TRANSPORT_POLICY", "relay", "needs a turn: or turns: server in ICE_SERVERS"),
    ("MAX_VIEWERS", "0", "between 1 and 32"),
    ("MAX_VIEWERS", "33", "between 1 and 32"),
    ("MAX_VIEWERS", "four", "whole number"),
    ("SESSION_ORPHAN_SECONDS", "-1", ">= 0 and <= 3600"),
    ("VIDEO_RTSP_TRANSPORT", "http", "one of"),
    ("VIDEO_RTSP_READER", "gstreamer", "one of"),
    ("VIDEO_NETWORK_TIMEOUT_SECONDS", "0", ">= 0.1 and <= 60"),
    ("VIDEO_NETWORK_TIMEOUT_SECONDS", "61", ">= 0.1 and <= 60"),
    ("VIDEO_H264_PASSTHROUGH", "maybe", "1 or 0"),
    ("VIDEO_H264_ENCODER", "gpu", "one of"),
    ("AUDIO_SOURCE", "hw:1\x07", "printable ASCII"),
    ("AUDIO_SINK", "hw:1\x07", "printable ASCII"),
    ("AUDIO_ECHO", "loud", "one of cancel, half-duplex, off"),
    ("AUDIO_NOISE_SUPPRESSION", "max", "one of off, low"),
    ("AUDIO_GAIN_CONTROL", "auto", "1 or 0"),
    ("AUDIO_BITRATE", "5999", "between 6000 and 510000"),
    ("AUDIO_PLAYOUT_MS", "61", ">= 10 and <= 60"),
    ("AUDIO_DEVICE_LATENCY_MS", "5", ">= 10 and <= 200"),
    ("SESSION_ORPHAN_SECONDS", "3601", ">= 0 and <= 3600"),
    ("BACKOFF_BASE_SECONDS", "-1", "> 0"),
    ("BACKOFF_BASE_SECONDS", "inf", "> 0"),
    ("BACKOFF_CAP_SECONDS", "0.5", ">= BACKOFF_BASE_SECONDS"),
    ("BACKOFF_CAP_SECONDS", "x", "a number"),
    ("HTTP_TIMEOUT_SECONDS", "0", "> 0"),
    ("HTTP_TIMEOUT_SECONDS", "1e9", "<= 300"),
    ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
    ("LOG_FORMAT", "xml", "text, json"),
    ("HEALTH_ADDRESS", "9108", "host:port"),
    ("HEALTH_ADDRESS", "127.0.0.1:70000", "between 1 and 65535"),
    ("HEALTH_ADDRESS", "192.0.2.7:9108", "HEALTH_ALLOW_REMOTE=1"),
    ("HEALTH_ALLOW_REMOTE", "perhaps", "must be 1 or 0"),
    ("HEALTH_STUCK_SECONDS", "0", "> 0"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VALUES)
def test_wrong_value_names_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{variable: value})
    error = caught.value
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")
    assert expected in error.problem, error.problem
    assert SECRET not in str(error)


def test_every_documented_variable_has_a_wrong_value_test() -> None:
    tested = {variable for variable, _value, _expected in BAD_VALUES}
    documented = {variable.name for variable in ENVIRONMENT_VARIABLES}
    # VIDEO_SOURCE is any string here; the camera adapter's hook checks it.
    assert documented - tested == {"VIDEO_SOURCE"}


def test_secret_values_are_never_echoed(tmp_path: Path) -> None:
    turn = [{"urls": "turn:t.example.com", "username": "u", "credential": SECRET, "bad": 1}]
    for variables in (
        {"OAUTH_CLIENT_SECRET": SECRET + "\x7f"},
        {"ICE_SERVERS": json.dumps(turn)},
        {"HTTP_API_BASE_URL": f"https://user:{SECRET}@api.example.com"},
    ):
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, **variables)
        assert SECRET not in str(caught.value)


def test_video_source_hook_turns_value_error_into_config_error(tmp_path: Path) -> None:
    def reject(source: str) -> None:
        raise ValueError(f"no camera at index {source}")

    with pytest.raises(ConfigError, match=r"^VIDEO_SOURCE: no camera at index 7$"):
        load_config(
            {**BASE, "VIDEO_SOURCE": "7"},
            oauth_file=None,
            adapter_checks={"VIDEO_SOURCE": reject},
        )
    accepted = load_config(
        {**BASE, "VIDEO_SOURCE": "testsrc"}, oauth_file=None, adapter_checks={"VIDEO_SOURCE": len}
    )
    assert accepted.video.source == "testsrc"


# --- Transport security ----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LOCALHOST"])
def test_plain_transport_is_allowed_to_loopback(tmp_path: Path, host: str) -> None:
    config = load(
        tmp_path,
        HTTP_API_BASE_URL=f"http://{host}:8000",
        WEBSOCKET_API_BASE_URL=f"ws://{host}:8000/",
    )
    assert config.endpoints.websocket_base_url == f"ws://{host}:8000"


@pytest.mark.parametrize(
    "host", ["api.example.com", "10.0.0.5", "[2001:db8::1]", "localhost.example.com"]
)
def test_plain_transport_to_other_hosts_needs_the_insecure_setting(
    tmp_path: Path, host: str
) -> None:
    with pytest.raises(ConfigError, match="HTTP_API_BASE_URL"):
        load(tmp_path, HTTP_API_BASE_URL=f"http://{host}")
    config = load(
        tmp_path,
        HTTP_API_BASE_URL=f"http://{host}",
        WEBSOCKET_API_BASE_URL=f"ws://{host}",
        ALLOW_INSECURE_TRANSPORT="1",
    )
    assert config.endpoints.allow_insecure_transport


# --- oauth.json fallback -----------------------------------------------------------------------


def write_oauth_file(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "intercom-api" / "oauth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


def test_credentials_from_the_oauth_file(tmp_path: Path) -> None:
    path = write_oauth_file(tmp_path, {"client_id": "from-file", "client_secret": SECRET})
    environ = {**BASE}
    del environ["OAUTH_CLIENT_ID"]
    config = load_config(environ, oauth_file=path)
    assert config.oauth.client_id == "from-file"
    assert config.oauth.client_secret == SECRET


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write_oauth_file(tmp_path, {"client_id": "from-file", "client_secret": SECRET})
    config = load_config({**BASE, "OAUTH_CLIENT_SECRET": "env-secret"}, oauth_file=path)
    assert config.oauth.client_id == "intercom-device"
    assert config.oauth.client_secret == "env-secret"


def test_file_secret_is_not_paired_with_another_client_id(tmp_path: Path) -> None:
    path = write_oauth_file(tmp_path, {"client_id": "from-file", "client_secret": SECRET})
    config = load_config(BASE, oauth_file=path)
    assert config.oauth.client_id == "intercom-device"
    assert config.oauth.client_secret is None


def test_file_secret_is_used_with_its_own_client_id(tmp_path: Path) -> None:
    path = write_oauth_file(tmp_path, {"client_id": "intercom-device", "client_secret": SECRET})
    assert load_config(BASE, oauth_file=path).oauth.client_secret == SECRET


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('["client_id"]', "must be a JSON object"),
        ('{"client_id": 5}', "'client_id' must be a string"),
        ('{"client_id": "id", "client_secret": "bad\\u0001secret"}', "printable ASCII"),
    ],
)
def test_broken_oauth_file_is_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "oauth.json"
    path.write_text(content)
    path.chmod(0o600)
    environ = {**BASE}
    del environ["OAUTH_CLIENT_ID"]
    with pytest.raises(ConfigError) as caught:
        load_config(environ, oauth_file=path)
    assert str(path) in caught.value.variable
    assert expected in str(caught.value)


def test_missing_client_id_mentions_the_file(tmp_path: Path) -> None:
    environ = {**BASE}
    del environ["OAUTH_CLIENT_ID"]
    with pytest.raises(ConfigError, match="OAUTH_CLIENT_ID: is required") as caught:
        load_config(environ, oauth_file=tmp_path / "none.json")
    assert "none.json" in str(caught.value)


# --- The documented table -------------------------------------------------------------------------


def test_table_renders_for_readme_and_envrc() -> None:
    table = environment_table_markdown()
    example = envrc_example()
    for variable in ENVIRONMENT_VARIABLES:
        assert f"`{variable.name}`" in table
        assert f"export {variable.name}=" in example
    assert "export HTTP_API_BASE_URL=https://api.example.com" in example
    assert "# export VIDEO_WIDTH=320" in example


def test_every_field_of_the_config_has_exactly_one_row() -> None:
    leaves: list[str] = []
    for field in attrs.fields(Config):
        if isinstance(field.type, type) and attrs.has(field.type):
            leaves += [f"{field.name}.{leaf.name}" for leaf in attrs.fields(field.type)]
        else:
            leaves.append(field.name)
    rows = [variable.field for variable in ENVIRONMENT_VARIABLES]
    assert sorted(rows) == sorted(leaves)


@pytest.mark.parametrize("variable", ENVIRONMENT_VARIABLES, ids=lambda v: v.name)
def test_every_default_is_a_valid_value(variable: Setting) -> None:
    if variable.default is not None:
        variable.parse(variable.name, variable.default)
    assert not (variable.required and variable.default is not None)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AUDIO_SOURCE", "tone:5", "AUDIO_SOURCE: the tone must be 20..20000 Hz, not 5"),
        ("AUDIO_SOURCE", "my mic", "AUDIO_SOURCE: must be an ALSA device name"),
        ("AUDIO_SINK", "tone", "AUDIO_SINK: is a playback device: an ALSA name or none"),
    ],
)
def test_the_audio_adapters_own_parser_names_the_variable(
    variable: str, value: str, expected: str
) -> None:
    from intercom_fsm.cli import _adapter_checks

    with pytest.raises(ConfigError) as caught:
        load_config({**BASE, variable: value}, oauth_file=None, adapter_checks=_adapter_checks())
    assert str(caught.value).startswith(expected), str(caught.value)
