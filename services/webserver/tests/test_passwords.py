"""Password checking: the CPU count it sizes itself by, its settings, and the bound on verifies run at once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from podkit.config import ConfigError
from podkit_testing import wait_until
from webserver.config import Argon2Params, Settings
from webserver.passwords import PasswordChecker, usable_cpus


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


async def test_no_more_verifies_run_at_once_than_there_are_slots(monkeypatch: pytest.MonkeyPatch, helpers: Any) -> None:
    """Six attempts, two slots: the argon2 hash is entered by two at a time, the other four wait their turn in
    the admission queue (not in a thread of their own, nor in the executor's queue)."""
    checker = PasswordChecker(Argon2Params.from_env(helpers.fast_argon2), concurrency=2, max_waiting=16)
    real_verify = PasswordHasher.verify
    release = threading.Event()
    lock = threading.Lock()
    inside = most = 0

    def counting_verify(hasher: PasswordHasher, stored_hash: str, secret: bytes) -> bool:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            release.wait(timeout=30)  # held until every attempt is either hashing or waiting
            return real_verify(hasher, stored_hash, secret)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)  # its instances have __slots__
    attempts = [asyncio.create_task(checker.verify(None, "pw", client=f"client-{i}")) for i in range(6)]
    try:
        await wait_until(
            lambda: inside == 2 and checker.admission.waiting == 4,
            within=10,
            what="two verifies hashing and four waiting for a slot",
        )
    finally:
        release.set()
        results = await asyncio.gather(*attempts)
    assert results == [False] * 6  # no stored hash: the dummy is checked, nothing matches
    assert most == 2
    assert inside == 0
    assert (checker.admission.running, checker.admission.waiting) == (0, 0)
