"""The verify admission queue: bounded, refusing at once past the bound, the quieter client first."""

from __future__ import annotations

import asyncio

import pytest
from webserver import admission as admission_module
from webserver.admission import Overloaded, VerifyAdmission


async def hold(admission: VerifyAdmission, client: str, release: asyncio.Event, admitted: list[str]) -> None:
    async with admission.slot(client):
        admitted.append(client)
        await release.wait()


async def test_past_the_slots_and_the_queue_attempts_are_refused_at_once() -> None:
    admission = VerifyAdmission(slots=1, max_waiting=1)
    release, admitted = asyncio.Event(), []
    running = asyncio.create_task(hold(admission, "busy", release, admitted))
    waiting = asyncio.create_task(hold(admission, "busy", release, admitted))
    await asyncio.sleep(0)
    assert (admission.running, admission.waiting) == (1, 1)
    with pytest.raises(Overloaded):
        async with admission.slot("busy"):
            pass
    release.set()
    await asyncio.gather(running, waiting)
    assert admitted == ["busy", "busy"]
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_quiet_client_takes_the_place_of_the_busiest_waiting_one() -> None:
    admission = VerifyAdmission(slots=1, max_waiting=2)
    release, admitted = asyncio.Event(), []
    # the flooding client's attempts count against it: its third waits behind a quieter client's first
    tasks = [asyncio.create_task(hold(admission, "flood", release, admitted)) for _ in range(3)]
    await asyncio.sleep(0)
    assert (admission.running, admission.waiting) == (1, 2)
    person = asyncio.create_task(hold(admission, "person", release, admitted))
    done, _ = await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    refused = list(done)
    assert len(refused) == 1
    assert refused[0] is tasks[-1]  # the busiest client's newest waiter
    assert isinstance(refused[0].exception(), Overloaded)
    release.set()
    await asyncio.gather(person, *(t for t in tasks if t not in refused))
    assert admitted == ["flood", "person", "flood"]  # the person went first of those waiting


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    admission = VerifyAdmission(slots=1, max_waiting=4)
    release, admitted = asyncio.Event(), []
    running = asyncio.create_task(hold(admission, "a", release, admitted))
    waiting = asyncio.create_task(hold(admission, "b", release, admitted))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert admission.waiting == 0
    release.set()
    await running
    assert (admission.running, admission.waiting) == (0, 0)


def test_past_max_clients_the_least_recently_seen_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of counts stays bounded, one eviction per new client and no sort on the event loop."""
    monkeypatch.setattr(admission_module, "MAX_CLIENTS", 3)
    admission = VerifyAdmission(slots=1, max_waiting=1)
    for client in ("a", "b", "c", "a", "d"):
        admission._score(client)
    assert list(admission._scores) == ["c", "a", "d"]  # b, seen least recently, went first
    assert admission._score("a") > admission._score("e")  # a's two earlier attempts still count
