from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from adapter.config import Settings
from podkit.config import ConfigError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.shared_dir == Path("/shared")
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9102)
    assert settings.batch_max_events == 1000
    assert settings.rescan_interval == 1.0
    assert settings.sink_url is None
    assert (settings.sink_timeout, settings.sink_max_backoff, settings.shutdown_grace) == (10.0, 30.0, 10.0)
    assert settings.log_level == "INFO"
    assert settings.retention_bytes == 256 * 1024 * 1024


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "SHARED_DIR": "/tmp/x",
            "METRICS_PORT": "0",
            "XML_BATCH_MAX_EVENTS": "5",
            "RESCAN_INTERVAL_MS": "250",
            "XML_SINK_URL": "http://sink:8080/xml",
            "XML_SINK_TIMEOUT": "2.5",
            "XML_RETENTION_BYTES": "0",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.shared_dir == Path("/tmp/x")
    assert settings.metrics_port == 0
    assert settings.batch_max_events == 5
    assert settings.rescan_interval == 0.25
    assert settings.sink_url == "http://sink:8080/xml"
    assert settings.sink_timeout == 2.5
    assert settings.retention_bytes == 0
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METRICS_PORT", "http"),
        ("METRICS_PORT", "70000"),
        ("XML_BATCH_MAX_EVENTS", "0"),
        ("XML_BATCH_MAX_EVENTS", "many"),
        ("RESCAN_INTERVAL_MS", "1.5"),
        ("XML_SINK_URL", "ftp://x"),
        ("XML_RETENTION_BYTES", "-1"),
        ("XML_RETENTION_BYTES", "256Mi"),
        ("XML_SINK_TIMEOUT", "nan"),
        ("XML_SINK_MAX_BACKOFF", "-1"),
        ("SHUTDOWN_GRACE_SECONDS", "soon"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert error.value.name == name
    assert str(error.value).startswith(f"{name}: ")


def test_the_entry_point_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "SHARED_DIR": str(tmp_path), "XML_SINK_URL": "ftp://x"}
    result = subprocess.run(
        [sys.executable, "-m", "adapter"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: XML_SINK_URL: must be an http(s) URL, got 'ftp://x'"
