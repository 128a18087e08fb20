"""Shipping events/ to a real local HTTP sink that fails on demand: at least once, in order, byte for byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from podkit_testing import Fault, SinkServer, wait_until

if TYPE_CHECKING:
    from conftest import Shared, Sidecar, Source, StartSidecar


@pytest.fixture
async def sink() -> AsyncIterator[SinkServer]:
    async with SinkServer() as server:
        yield server


def shipped_ids(sink: SinkServer) -> list[str]:
    return [json.loads(line)["event_id"] for line in sink.accepted_lines()]


def shipped_to_end(shared: Shared) -> bool:
    checkpoint, segments = shared.checkpoint("ship.json"), shared.segments()
    return checkpoint == {"version": 1, "segment": segments[-1].name, "offset": segments[-1].stat().st_size}


async def start_shipping(start_sidecar: StartSidecar, sink: SinkServer, **overrides: str) -> Sidecar:
    return await start_sidecar(SINK_URL=sink.url, **overrides)


async def test_ships_ndjson_byte_for_byte(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink)
    ids = source.append(5)
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared), what="5 events shipped")
    assert sink.accepted_lines() == shared.lines()
    request = sink.requests[0]
    assert (request.method, request.headers["content-type"]) == ("POST", "application/x-ndjson")
    assert request.body.endswith(b"\n")
    await wait_until(lambda: sidecar.value("loginpod_sidecar_events_shipped_total") == 5)
    assert sidecar.value("loginpod_sidecar_ship_batches_total", result="delivered") == len(sink.requests)
    assert sidecar.value("loginpod_sidecar_ship_lag_events") == 0
    assert sidecar.value("loginpod_sidecar_last_ship_timestamp_seconds") > 0


async def test_batches_by_count_and_drains_on_stop(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink, SINK_BATCH_MAX_EVENTS="4", SINK_FLUSH_INTERVAL_MS="60000")
    ids = source.append(10)
    await wait_until(lambda: len(shipped_ids(sink)) >= 8, what="the full batches")
    assert [len(request.lines()) for request in sink.requests] == [4, 4]
    assert shipped_ids(sink) == ids[:8]  # the last two wait for the flush interval ...
    await wait_until(lambda: sidecar.value("loginpod_sidecar_ship_lag_events") == 2)
    await sidecar.stop()  # ... or for the shutdown
    assert shipped_ids(sink) == ids
    assert shipped_to_end(shared)


async def test_batches_by_bytes(source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar) -> None:
    await start_shipping(start_sidecar, sink, SINK_BATCH_MAX_BYTES="1024")
    ids = source.append(10)
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared))
    assert len(sink.requests) >= 3
    assert all(0 < len(request.body) <= 1024 for request in sink.requests)


async def test_flushes_a_partial_batch_after_the_interval(
    source: Source, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    await start_shipping(start_sidecar, sink, SINK_FLUSH_INTERVAL_MS="50")
    ids = source.append(3)
    await wait_until(lambda: shipped_ids(sink) == ids)
    assert len(sink.requests) == 1


async def test_outage_is_retried_without_moving_the_checkpoint(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink)
    sink.outage = Fault(503)
    ids = source.append(4)
    await wait_until(lambda: sidecar.value("loginpod_sidecar_ship_retries_total", reason="status 503") >= 3)
    assert shared.checkpoint("ship.json") in (None, {"version": 1, "segment": "events-00000001.jsonl", "offset": 0})
    assert sidecar.value("loginpod_sidecar_ship_lag_events") == 4
    assert (await sidecar.get("/readyz")).status_code == 200  # a sink outage does not make the pod unready
    sink.outage = None
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared))


async def test_429_with_retry_after_and_dropped_connections_are_retried(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink)
    sink.fail_next(Fault(429, retry_after="1"), Fault(close=True))
    ids = source.append(3)
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared))
    assert [request.status for request in sink.requests] == [429, None, 200]
    assert sidecar.value("loginpod_sidecar_ship_retries_total", reason="status 429") == 1
    assert sidecar.value("loginpod_sidecar_ship_retries_total", reason="RemoteProtocolError") == 1


async def test_refused_batch_goes_to_the_dead_letter_file(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink)
    sink.fail_next(Fault(400))
    refused = source.append(3)
    await wait_until(lambda: len(shared.deadletters()) == 3, what="the refused batch dead-lettered")
    records = shared.deadletters()
    assert {(record["reason"], record["status"]) for record in records} == {("sink_rejected", 400)}
    assert [record["raw"].encode() for record in records] == shared.lines()
    assert [record["offset"] for record in records] == [
        0,
        len(shared.lines()[0]) + 1,
        sum(len(x) + 1 for x in shared.lines()[:2]),
    ]
    await wait_until(lambda: sidecar.value("loginpod_sidecar_ship_batches_total", result="rejected") == 1)
    assert sidecar.value("loginpod_sidecar_deadletter_total", reason="sink_rejected") == 3
    after = source.append(2)  # shipping goes on
    await wait_until(lambda: shipped_ids(sink) == after and shipped_to_end(shared))
    assert not set(refused) & set(shipped_ids(sink))


async def test_restarts_during_an_outage_lose_nothing(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sink.outage = Fault(503)
    first = await start_shipping(start_sidecar, sink, SHUTDOWN_GRACE_SECONDS="0.3")
    ids = source.append(3)
    await wait_until(lambda: first.value("loginpod_sidecar_ship_retries_total", reason="status 503") >= 1)
    await first.stop()  # the grace period runs out: the batch stays unshipped
    second = await start_shipping(start_sidecar, sink)
    ids += source.append(3)
    await wait_until(lambda: second.value("loginpod_sidecar_ship_retries_total", reason="status 503") >= 1)
    await second.crash()
    assert shared.checkpoint("ship.json") in (None, {"version": 1, "segment": "events-00000001.jsonl", "offset": 0})
    sink.outage = None
    third = await start_shipping(start_sidecar, sink)
    ids += source.append(1)
    await wait_until(lambda: set(ids) <= set(shipped_ids(sink)) and shipped_to_end(shared))
    assert shipped_ids(sink) == ids  # at least once; here, with nothing in flight at the 2xx, once
    await wait_until(lambda: third.value("loginpod_sidecar_ship_lag_events") == 0)


async def test_resumes_from_the_ship_checkpoint(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_shipping(start_sidecar, sink)
    ids = source.append(3)
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared))
    await sidecar.stop()
    more = source.append(2)
    await start_shipping(start_sidecar, sink)
    await wait_until(lambda: shipped_ids(sink) == ids + more and shipped_to_end(shared))


async def test_ships_across_segments(
    source: Source, shared: Shared, sink: SinkServer, start_sidecar: StartSidecar
) -> None:
    await start_shipping(start_sidecar, sink, SEGMENT_MAX_BYTES="1024")
    ids = source.append(12)
    await wait_until(lambda: shipped_ids(sink) == ids and shipped_to_end(shared))
    assert len(shared.segments()) > 3
