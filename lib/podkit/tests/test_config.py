from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from podkit.config import ConfigError, Env


def test_reads_typed_values_and_defaults() -> None:
    env = Env({"PORT": "8080", "RATIO": "0.5", "ON": "yes", "URL": "http://sink:9000/in", "BLANK": "  "})
    assert env.port("PORT", 1) == 8080
    assert env.float("RATIO", 1.0) == 0.5
    assert env.bool("ON", False) is True
    assert env.url("URL") == "http://sink:9000/in"
    assert env.int("BLANK", 7) == 7
    assert env.optional_url("MISSING") is None


@pytest.mark.parametrize(
    ("environ", "read", "message"),
    [
        ({"WEB_PORT": "eighty"}, lambda e: e.port("WEB_PORT", 80), "WEB_PORT: must be a whole number, got 'eighty'"),
        ({"WEB_PORT": "70000"}, lambda e: e.port("WEB_PORT", 80), "WEB_PORT: must be at most 65535"),
        ({"SINK_URL": "ftp://x"}, lambda e: e.optional_url("SINK_URL"), "SINK_URL: must be an http(s) URL"),
        ({"T": "nan"}, lambda e: e.float("T", 1.0), "T: must be a finite number"),
        ({"B": "maybe"}, lambda e: e.bool("B", True), "B: must be true or false"),
        ({"NETS": "10.0.0.0/8,nonsense"}, lambda e: e.networks("NETS", ""), "NETS: 'nonsense' is not an IP"),
        ({}, lambda e: e.str("REQUIRED", required=True), "REQUIRED: is required"),
        ({"MODE": "x"}, lambda e: e.choice("MODE", "a", ("a", "b")), "MODE: must be one of a, b"),
    ],
)
def test_errors_name_the_variable(environ: dict[str, str], read: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        read(Env(environ))  # type: ignore[operator]
    assert str(error.value).startswith(message)


def test_log_level_is_any_case_and_one_of_the_logging_levels() -> None:
    assert Env({}).log_level() == "INFO"
    assert Env({"LOG_LEVEL": "debug"}).log_level() == "DEBUG"
    assert Env({"LOG_LEVEL": " critical "}).log_level() == "CRITICAL"
    with pytest.raises(
        ConfigError, match=r"^LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'$"
    ):
        Env({"LOG_LEVEL": "loud"}).log_level()


def test_secret_prefers_the_file_and_checks_its_length(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 40 + "\n")
    assert Env({"KEY_FILE": str(key), "KEY": "ignored"}).secret("KEY", min_bytes=32) == b"k" * 40
    with pytest.raises(ConfigError, match="KEY: must hold at least 32 bytes"):
        Env({"KEY": "short"}).secret("KEY", min_bytes=32)
    with pytest.raises(ConfigError, match="KEY_FILE: cannot read"):
        Env({"KEY_FILE": str(tmp_path / "missing")}).secret("KEY")
    with pytest.raises(ConfigError, match=r"KEY: is required \(or KEY_FILE"):
        Env({}).secret("KEY")


def test_load_or_exit_prints_one_line_and_exits_2() -> None:
    code = (
        "from podkit.config import Env, load_or_exit\n"
        "load_or_exit(lambda: Env({'WEB_PORT': 'x'}).port('WEB_PORT', 80))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: WEB_PORT: must be a whole number, got 'x'"
