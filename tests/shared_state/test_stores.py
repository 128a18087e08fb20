"""The Redis pieces one by one against a real redis-server: settings, outage rule, scripts, key prefixes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ambassador.ratelimit import LoginRateLimiter
from ambassador.sharedlimit import SharedRateLimiter
from peers import RedisServer
from podkit.config import ConfigError
from podkit.sharedstore import SharedStore, StoreSettings, StoreUnavailable, redact
from podkit_testing import wait_until
from webserver.sessions import Session
from webserver.sharedstate import SharedLockout, SharedRevocations


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def store(redis_server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[SharedStore]:
    prefix = f"unit-{request.node.name[:40]}:"
    shared = SharedStore(StoreSettings(redis_server.url, key_prefix=prefix, retry_interval=0.2), "test")
    yield shared
    await shared.aclose()


def test_settings_from_the_environment(tmp_path: Path) -> None:
    assert StoreSettings.from_env({}) is None
    settings = StoreSettings.from_env({"REDIS_URL": "rediss://:pw@redis.loginpod.svc:6380/1", "REDIS_TIMEOUT": "2"})
    assert settings is not None
    assert (settings.timeout, settings.key_prefix) == (2.0, "loginpod:")
    assert redact(settings.url) == "rediss://redis.loginpod.svc:6380/1"
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    with_file = StoreSettings.from_env({"REDIS_URL": "redis://r", "REDIS_PASSWORD_FILE": str(secret)})
    assert with_file is not None
    assert with_file.password == "s3cret"
    assert "s3cret" not in repr(with_file)
    assert ":pw@" not in repr(settings)
    for env, name in (
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://redis:abc"}, "REDIS_URL"),  # fails in redis' own parser otherwise, at start-up
        ({"REDIS_URL": "redis://redis:99999"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://[::1"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://r", "REDIS_KEY_PREFIX": "a b"}, "REDIS_KEY_PREFIX"),
        ({"REDIS_URL": "redis://r", "REDIS_TIMEOUT": "0"}, "REDIS_TIMEOUT"),
    ):
        with pytest.raises(ConfigError) as caught:
            StoreSettings.from_env(env)
        assert caught.value.name == name


async def test_revocations_expire_with_the_session(store: SharedStore) -> None:
    revocations = SharedRevocations(store)
    server_now = int((await store.client.time())[0])
    session = Session("alice", "sid-1", server_now + 2)
    assert not await revocations.is_revoked("sid-1")
    await revocations.revoke(session)
    assert await revocations.is_revoked("sid-1")
    assert 0 < await store.client.ttl(store.key("revoked", "sid-1")) <= 2
    assert await store.client.exists("unit-test_revocations_expire_with_the_session:revoked:sid-1")


async def test_lockout_in_parallel_checks_at_most_threshold_passwords(store: SharedStore) -> None:
    lockout = SharedLockout(store, threshold=3, window_seconds=60, lockout_seconds=60)
    # Ten attempts at once (as from several replicas): at most three get their password checked.
    began = await asyncio.gather(*(lockout.begin("bob") for _ in range(10)))
    assert sum(began) == 3
    for _ in range(3):
        await lockout.finish("bob", success=False)
    assert await lockout.locked("bob")
    assert not await lockout.begin("bob")
    assert await store.client.ttl(lockout._keys("bob")[2]) > 50
    # A success resets the count of a name that is not locked.
    assert await lockout.begin("carol")
    await lockout.finish("carol", success=False)
    assert await lockout.begin("carol")
    await lockout.finish("carol", success=True)
    assert not await store.client.exists(lockout._keys("carol")[0])


async def test_a_password_from_the_settings_is_used(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persistent=False, password="pw-123")
    server.start()
    try:
        for password, works in (("pw-123", True), (None, False)):
            store = SharedStore(StoreSettings(server.url, password=password), "test")
            try:
                if works:
                    await SharedLockout(store, 3, 60, 60).check_available()
                else:
                    with pytest.raises(StoreUnavailable):
                        await SharedLockout(store, 3, 60, 60).check_available()
            finally:
                await store.aclose()
    finally:
        server.stop()


async def test_shared_bucket_grants_what_one_memory_bucket_grants(store: SharedStore) -> None:
    shared = SharedRateLimiter(store, rate_per_minute=60, burst=3)
    memory = LoginRateLimiter(60, 3, 100)
    assert [await shared.take("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [await memory.take("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await shared.take("192.0.2.1")
    assert 0.0 < wait <= 1.0  # one token a second
    assert await shared.take("192.0.2.2") == 0.0  # another client, another bucket
    assert 0 < await store.client.pttl(store.key("ratelimit", "192.0.2.1")) <= 4000


async def test_outage_fails_fast_logs_once_and_recovers(
    store: SharedStore, redis_server: RedisServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    limiter = SharedRateLimiter(store, rate_per_minute=0.001, burst=1)
    revocations = SharedRevocations(store)
    assert await limiter.take("192.0.2.9") == 0.0
    assert await limiter.take("192.0.2.9") > 0.0
    redis_server.kill()
    try:
        with caplog.at_level(logging.INFO, logger="podkit.sharedstore"):
            for _ in range(5):
                assert await limiter.take("192.0.2.9") == 0.0  # fails open
                with pytest.raises(StoreUnavailable):
                    await revocations.is_revoked("sid")  # the caller fails closed
            assert store.down
            assert store.failures == {"ratelimit": 5, "revocation": 5}
            outage_lines = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert [r.levelno for r in outage_lines] == [logging.ERROR]
    finally:
        redis_server.start()
    with caplog.at_level(logging.INFO, logger="podkit.sharedstore"):

        async def recovered() -> bool:
            try:
                return not await revocations.is_revoked("sid")
            except StoreUnavailable:
                return False

        await wait_until(recovered, within=10, interval=0.05, what="Redis answering again")
        assert not store.down
        assert any("available again" in r.getMessage() for r in caplog.records)
