"""Settings from the environment: defaults, secrets from files, and errors that name the variable."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from podkit.config import ConfigError
from webserver.config import Settings

KEY = "k" * 32


def test_defaults() -> None:
    settings = Settings.from_env({"SESSION_KEY": KEY})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.users_file == Path("/etc/loginpod/users/users.txt")
    assert settings.events_file == Path("/var/log/loginpod/events.jsonl")
    assert (settings.argon2.time_cost, settings.argon2.memory_kib, settings.argon2.parallelism) == (2, 19456, 1)
    assert (settings.lockout_threshold, settings.lockout_window_seconds, settings.lockout_seconds) == (5, 900, 900)
    assert (settings.events_file_max_bytes, settings.events_file_keep) == (67108864, 2)
    assert (settings.session_ttl_seconds, settings.max_body_bytes, settings.log_level) == (3600, 65536, "INFO")
    assert settings.pod_name
    assert ipaddress.ip_network("127.0.0.0/8") in settings.trusted_proxies
    assert ipaddress.ip_network("::1/128") in settings.trusted_proxies
    assert KEY not in repr(settings)


def test_session_key_file_wins(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("f" * 40 + "\n")
    settings = Settings.from_env({"SESSION_KEY": KEY, "SESSION_KEY_FILE": str(key_file)})
    assert settings.session_key == b"f" * 40


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "SESSION_KEY"),
        ({"SESSION_KEY": "short"}, "SESSION_KEY"),
        ({"SESSION_KEY_FILE": "/nonexistent/key"}, "SESSION_KEY_FILE"),
        ({"SESSION_KEY": KEY, "WEB_PORT": "http"}, "WEB_PORT"),
        ({"SESSION_KEY": KEY, "WEB_PORT": "70000"}, "WEB_PORT"),
        ({"SESSION_KEY": KEY, "TRUSTED_PROXIES": "10.0.0.0/8, nope"}, "TRUSTED_PROXIES"),
        ({"SESSION_KEY": KEY, "ARGON2_MEMORY_KIB": "8", "ARGON2_PARALLELISM": "2"}, "ARGON2_MEMORY_KIB"),
        ({"SESSION_KEY": KEY, "ARGON2_TIME_COST": "0"}, "ARGON2_TIME_COST"),
        ({"SESSION_KEY": KEY, "LOCKOUT_THRESHOLD": "0"}, "LOCKOUT_THRESHOLD"),
        ({"SESSION_KEY": KEY, "EVENTS_FILE_KEEP": "0"}, "EVENTS_FILE_KEEP"),
        ({"SESSION_KEY": KEY, "LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"SESSION_KEY": KEY, "POD_NAME": "p" * 300}, "POD_NAME"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.name == name


def test_python_m_webserver_exits_2_on_a_bad_port() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "SESSION_KEY"))}
    result = subprocess.run(
        [sys.executable, "-m", "webserver"],
        env={**env, "SESSION_KEY": KEY, "WEB_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: WEB_PORT: must be a whole number, got 'eighty'"


class _Recording(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def test_the_readme_table_names_every_variable_the_settings_read() -> None:
    """config.py's docstring sends readers to the README's webserver table for the defaults: it must be whole."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = readme.split("\n### webserver\n", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    asked: set[str] = set()
    for extra in ({}, {"REDIS_URL": "redis://127.0.0.1:6379/0"}):
        environ = _Recording({"SESSION_KEY": KEY, **extra})
        Settings.from_env(environ)
        asked |= environ.asked
    assert "ARGON2_MAX_WAITING" in asked  # the recording sees what the settings read
    assert asked - named == set()
