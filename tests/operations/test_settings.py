"""Operations settings from the environment: off by default, loopback unless
the operator explicitly allows otherwise, bad values named."""

from __future__ import annotations

import pytest

from intercom_fsm.config import ENVIRONMENT_VARIABLES, ConfigError, HealthAddress
from intercom_fsm.daemon.operations import DEFAULT_STUCK_SECONDS, OperationsSettings


def test_everything_is_off_by_default() -> None:
    settings = OperationsSettings.from_environ({})
    assert settings == OperationsSettings()
    assert settings.health_address is None
    assert settings.notify_socket is None
    assert settings.watchdog_interval is None
    assert settings.stuck_seconds == DEFAULT_STUCK_SECONDS


def test_systemd_variables_are_taken() -> None:
    settings = OperationsSettings.from_environ(
        {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    )
    assert settings.notify_socket == "/run/systemd/notify"
    assert settings.watchdog_interval == 15.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9108", HealthAddress("127.0.0.1", 9108)),
        ("localhost:9108", HealthAddress("localhost", 9108)),
        ("[::1]:9108", HealthAddress("::1", 9108)),
        (" 127.0.0.2:80 ", HealthAddress("127.0.0.2", 80)),
    ],
)
def test_loopback_addresses(value: str, expected: HealthAddress) -> None:
    assert OperationsSettings.from_environ({"HEALTH_ADDRESS": value}).health_address == expected


def test_ipv6_address_is_written_back_in_brackets() -> None:
    assert HealthAddress("::1", 9108).url == "http://[::1]:9108"


@pytest.mark.parametrize("value", ["0.0.0.0:9108", "192.0.2.7:9108", "monitor.example:9108"])
def test_a_remote_address_needs_explicit_permission(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        OperationsSettings.from_environ({"HEALTH_ADDRESS": value})
    assert refused.value.variable == "HEALTH_ADDRESS"
    assert "HEALTH_ALLOW_REMOTE=1" in str(refused.value)
    allowed = OperationsSettings.from_environ({"HEALTH_ADDRESS": value, "HEALTH_ALLOW_REMOTE": "1"})
    assert allowed.health_address is not None


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"HEALTH_ADDRESS": "9108"}, "HEALTH_ADDRESS"),
        ({"HEALTH_ADDRESS": "127.0.0.1:http"}, "HEALTH_ADDRESS"),
        ({"HEALTH_ADDRESS": "127.0.0.1:0"}, "HEALTH_ADDRESS"),
        ({"HEALTH_ADDRESS": "127.0.0.1:70000"}, "HEALTH_ADDRESS"),
        ({"HEALTH_ALLOW_REMOTE": "perhaps"}, "HEALTH_ALLOW_REMOTE"),
        ({"HEALTH_STUCK_SECONDS": "0"}, "HEALTH_STUCK_SECONDS"),
        ({"HEALTH_STUCK_SECONDS": "soon"}, "HEALTH_STUCK_SECONDS"),
    ],
)
def test_bad_values_are_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as refused:
        OperationsSettings.from_environ(environ)
    assert refused.value.variable == variable


def test_stuck_limit() -> None:
    assert OperationsSettings.from_environ({"HEALTH_STUCK_SECONDS": "60"}).stuck_seconds == 60


def test_documented_rows_match_the_defaults() -> None:
    rows = {v.name: v.default for v in ENVIRONMENT_VARIABLES if v.name.startswith("HEALTH_")}
    assert rows == {
        "HEALTH_ADDRESS": None,
        "HEALTH_ALLOW_REMOTE": "0",
        "HEALTH_STUCK_SECONDS": "300",
    }
    assert float(rows["HEALTH_STUCK_SECONDS"] or 0) == DEFAULT_STUCK_SECONDS
