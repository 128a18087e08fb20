from __future__ import annotations

from pathlib import Path

import pytest
from podkit.config import ConfigError
from webserver.config import Settings
from webserver.passwords import usable_cpus


def test_usable_cpus_is_capped_by_the_cgroup_quota(tmp_path: Path) -> None:
    unlimited = usable_cpus(tmp_path / "missing")
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert usable_cpus(cpu_max) == min(2, unlimited)
    cpu_max.write_text("50000 100000\n")
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == unlimited


def test_argon2_concurrency_is_configurable() -> None:
    env = {"SESSION_KEY": "k" * 32}
    assert Settings.from_env(env).argon2.concurrency == 0
    assert Settings.from_env({**env, "ARGON2_CONCURRENCY": "3"}).argon2.concurrency == 3


def test_argon2_max_waiting_is_validated() -> None:
    env = {"SESSION_KEY": "k" * 32}
    assert Settings.from_env(env).argon2.max_waiting == 16
    assert Settings.from_env({**env, "ARGON2_MAX_WAITING": "0"}).argon2.max_waiting == 0
    with pytest.raises(ConfigError, match="ARGON2_MAX_WAITING"):
        Settings.from_env({**env, "ARGON2_MAX_WAITING": "-1"})


def test_events_file_keep_max_is_at_least_keep() -> None:
    env = {"SESSION_KEY": "k" * 32, "EVENTS_FILE_KEEP": "3"}
    assert Settings.from_env(env).events_file_keep_max == 8
    assert Settings.from_env({**env, "EVENTS_FILE_KEEP_MAX": "3"}).events_file_keep_max == 3
    with pytest.raises(ConfigError, match="EVENTS_FILE_KEEP_MAX"):
        Settings.from_env({**env, "EVENTS_FILE_KEEP_MAX": "2"})
