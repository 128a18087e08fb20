"""Lockout per username: generic answers, reason locked_out, and the window and duration rules."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from webserver.lockout import Lockout


async def test_account_locks_after_threshold_failures(make_client: Any, helpers: Any) -> None:
    async with make_client(LOCKOUT_THRESHOLD="3") as client:
        statuses = []
        for _ in range(3):
            statuses.append((await client.post("/login", json={"username": "alice", "password": "bad"})).status_code)
        right = await client.post("/login", json={"username": "alice", "password": helpers.password})
        wrong = await client.post("/login", json={"username": "alice", "password": "bad"})
        assert statuses == [401, 401, 401]
        assert right.status_code == wrong.status_code == 401
        assert right.content == wrong.content
        assert "session" not in client.cookies
        # Unknown names are never locked (there is no account to protect).
        for _ in range(4):
            await client.post("/login", json={"username": "mallory", "password": "bad"})
    reasons = [e["reason"] for e in helpers.events()]
    assert reasons == ["bad_password"] * 3 + ["locked_out"] * 2 + ["unknown_user"] * 4


async def test_parallel_guesses_cannot_pass_the_threshold(make_client: Any, helpers: Any) -> None:
    async with make_client(LOCKOUT_THRESHOLD="3") as client:
        responses = await asyncio.gather(
            *(client.post("/login", json={"username": "alice", "password": f"bad{i}"}) for i in range(8))
        )
    assert {r.status_code for r in responses} == {401}
    reasons = sorted(e["reason"] for e in helpers.events())
    assert reasons.count("bad_password") <= 3
    assert reasons.count("locked_out") >= 5


async def test_failures_outside_the_window_do_not_count_and_locks_expire() -> None:
    now = [0.0]
    lockout = Lockout(threshold=2, window_seconds=10, lockout_seconds=30, clock=lambda: now[0])
    assert await lockout.begin("alice")
    await lockout.finish("alice", success=False)
    now[0] = 11  # the first failure left the window
    assert await lockout.begin("alice")
    await lockout.finish("alice", success=False)
    assert not lockout.locked("alice")
    assert await lockout.begin("alice")
    await lockout.finish("alice", success=False)
    assert lockout.locked("alice")
    assert not await lockout.begin("alice")
    now[0] = 11 + 30
    assert await lockout.begin("alice")
    await lockout.finish("alice", success=True)
    assert lockout._records == {}  # nothing kept for an account in good standing


async def test_success_resets_the_failure_count(client: httpx.AsyncClient, helpers: Any) -> None:
    for _ in range(4):
        await client.post("/login", json={"username": "alice", "password": "bad"})
    assert (await client.post("/login", json={"username": "alice", "password": helpers.password})).status_code == 200
    for _ in range(4):
        await client.post("/login", json={"username": "alice", "password": "bad"})
    assert (await client.post("/login", json={"username": "alice", "password": helpers.password})).status_code == 200
