"""Settings from the environment: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import ipaddress

import pytest
from ambassador.config import Settings
from podkit.config import ConfigError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("0.0.0.0", 80)
    assert settings.upstream_url == "http://127.0.0.1:8080"
    assert (settings.connect_timeout, settings.read_timeout) == (2.0, 30.0)
    assert (settings.max_body_bytes, settings.max_header_bytes, settings.max_url_bytes) == (1_048_576, 16_384, 8192)
    assert (settings.client_header_timeout, settings.client_body_timeout) == (10.0, 30.0)
    assert settings.upstream_max_connections == 100
    assert settings.trusted_proxies == ()
    assert (settings.login_rate_per_minute, settings.login_burst, settings.login_paths) == (30.0, 10, ("/login",))
    assert settings.access_log is True
    assert settings.log_level == "INFO"


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "AMBASSADOR_HOST": "127.0.0.1",
            "AMBASSADOR_PORT": "8000",
            "UPSTREAM_URL": "http://webserver:8080/",
            "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "LOGIN_PATHS": "/login, /api/login",
            "ACCESS_LOG": "false",
            "LOG_LEVEL": "debug",
            "MAX_URL_BYTES": "4096",
            "CLIENT_HEADER_TIMEOUT": "2.5",
            "CLIENT_BODY_TIMEOUT": "5",
        }
    )
    assert (settings.max_url_bytes, settings.client_header_timeout, settings.client_body_timeout) == (4096, 2.5, 5.0)
    assert settings.port == 8000
    assert settings.upstream_url == "http://webserver:8080"
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.1/32"))
    assert settings.login_paths == ("/login", "/api/login")
    assert settings.access_log is False
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("level", ["DEBUG", "info", "Warning", "ERROR", "critical"])
def test_every_log_level_is_accepted(level: str) -> None:
    """podkit.config's reader, as every service's: CRITICAL too (the ambassador's own copy refused it)."""
    assert Settings.from_env({"LOG_LEVEL": level}).log_level == level.upper()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPSTREAM_URL", "ftp://x"),
        ("UPSTREAM_URL", "https://webserver"),
        ("AMBASSADOR_PORT", "70000"),
        ("READ_TIMEOUT", "soon"),
        ("MAX_BODY_BYTES", "-1"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("LOGIN_BURST", "0"),
        ("LOGIN_PATHS", "login"),
        ("LOG_LEVEL", "loud"),
        ("ACCESS_LOG", "maybe"),
        ("MAX_URL_BYTES", "12"),
        ("CLIENT_HEADER_TIMEOUT", "0"),
        ("CLIENT_BODY_TIMEOUT", "never"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}: ")
