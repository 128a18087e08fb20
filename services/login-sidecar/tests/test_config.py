"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from login_sidecar.config import Settings
from podkit.config import ConfigError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.source_file == Path("/var/log/loginpod/events.jsonl")
    assert settings.shared_dir == Path("/shared")
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9101)
    assert settings.poll_interval == 0.25
    assert settings.segment_max_bytes == 67108864
    assert settings.max_line_bytes == 1048576
    assert settings.sink_url is None
    assert (settings.sink_batch_max_events, settings.sink_batch_max_bytes) == (500, 1048576)
    assert settings.sink_flush_interval == 1.0
    assert (settings.sink_timeout, settings.sink_max_backoff) == (10.0, 30.0)
    assert settings.shutdown_grace == 10.0
    assert settings.log_level == "INFO"
    assert settings.tail_checkpoint == Path("/shared/state/login-sidecar/tail.json")
    assert settings.ship_checkpoint == Path("/shared/state/login-sidecar/ship.json")
    assert settings.volume.conversion_checkpoint == Path("/shared/state/adapter/xml.json")
    assert settings.deadletter_file == Path("/shared/deadletter/login-sidecar.jsonl")


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {"SINK_URL": "https://logs.example/ingest", "POLL_INTERVAL_MS": "20", "LOG_LEVEL": "debug", "SINK_URL_X": ""}
    )
    assert settings.sink_url == "https://logs.example/ingest"
    assert settings.poll_interval == 0.02
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SINK_URL", "ftp://x"),
        ("SINK_URL", "relp://logs.example/path"),
        ("SINK_URL", "syslog+tcp://:514"),
        ("SINK_URL", "syslog+tls://logs.example:99999"),
        ("METRICS_PORT", "70000"),
        ("POLL_INTERVAL_MS", "0"),
        ("SEGMENT_MAX_BYTES", "big"),
        ("MAX_LINE_BYTES", "10"),
        ("SINK_BATCH_MAX_EVENTS", "0"),
        ("SINK_BATCH_MAX_BYTES", "-1"),
        ("SINK_FLUSH_INTERVAL_MS", "1.5"),
        ("SINK_TIMEOUT", "nan"),
        ("SINK_MAX_BACKOFF", "0"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert error.value.name == name
    assert str(error.value).startswith(f"{name}: ")


def test_bad_value_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SINK_URL": "ftp://x", "SHARED_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "login_sidecar"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr == (
        "config error: SINK_URL: must be a URL with one of http://, https://, relp://, syslog+tls://, syslog+tcp://, "
        "got 'ftp://x'\n"
    )


@pytest.mark.parametrize(
    ("tls", "name"),
    [
        ({"SINK_TLS_CA_FILE": "/nonexistent/ca.pem"}, "SINK_TLS_CA_FILE"),
        ({"SINK_TLS_CA_FILE": "NOT_PEM"}, "SINK_TLS_CA_FILE"),  # a file that is not a certificate
        ({"SINK_TLS_KEY_FILE": "/some/key.pem"}, "SINK_TLS_KEY_FILE"),  # a key without its certificate
        ({"SINK_TLS_CERT_FILE": "/nonexistent/cert.pem"}, "SINK_TLS_CERT_FILE"),
    ],
)
def test_tls_files_that_cannot_be_used_name_their_variable(tmp_path: Path, tls: dict[str, str], name: str) -> None:
    """Read at start-up: a bad file is a config error naming it (exit 2), not a traceback when shipping starts."""
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    env = {
        "SINK_URL": "syslog+tls://127.0.0.1:6514",
        **{k: str(not_pem) if v == "NOT_PEM" else v for k, v in tls.items()},
    }
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert error.value.name == name
