"""The sidecar in-process: source to events/ exactly once, through rotations, truncations and bad lines."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from podkit_testing import wait_until

if TYPE_CHECKING:
    from conftest import Shared, Source, StartSidecar


async def test_events_reach_a_segment_byte_for_byte(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar()
    ids = source.append(5)
    await wait_until(lambda: shared.holds(ids), what="5 events in events/, checkpointed")
    assert b"".join(line + b"\n" for line in shared.lines()) == source.path.read_bytes()
    assert [segment.name for segment in shared.segments()] == ["events-00000001.jsonl"]
    checkpoint = shared.checkpoint("tail.json")
    assert checkpoint is not None
    assert checkpoint["source"]["offset"] == source.path.stat().st_size
    assert checkpoint["source"]["ino"] == source.path.stat().st_ino
    assert checkpoint["segment"] == "events-00000001.jsonl"
    assert checkpoint["segment_size"] == shared.segments()[0].stat().st_size
    await wait_until(lambda: sidecar.value("loginpod_sidecar_events_written_total") == 5)
    assert sidecar.value("loginpod_sidecar_events_read_total") == 5
    assert sidecar.value("loginpod_sidecar_last_write_timestamp_seconds") > 0


async def test_waits_for_the_source_and_is_ready_meanwhile(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar()
    assert (await sidecar.get("/healthz")).status_code == 200
    ready = await sidecar.get("/readyz")
    assert ready.status_code == 200, ready.text
    ids = source.append(2)
    await wait_until(lambda: shared.event_ids() == ids)


async def test_partial_line_waits_for_its_newline(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    await start_sidecar()
    first, second = source.event(), source.event()
    line = source.line(second)
    source.write(source.line(first) + line[:20])
    await wait_until(lambda: shared.holds([first["event_id"]]))
    checkpoint = shared.checkpoint("tail.json")
    assert checkpoint is not None
    assert checkpoint["source"]["offset"] == len(source.line(first))
    source.write(line[20:])
    await wait_until(lambda: shared.event_ids() == [first["event_id"], second["event_id"]])


async def test_bad_lines_go_to_the_dead_letter_file(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(MAX_LINE_BYTES="2048")
    good = source.event()
    huge = b'{"event_id":"' + b"x" * 10_000 + b'"}'
    source.write(b"not json\n" + b"[1,2]\n" + huge + b"\n" + b"\xff\xfe{}\n" + source.line(good))
    await wait_until(lambda: sidecar.value("loginpod_sidecar_events_written_total") == 1)
    assert shared.event_ids() == [good["event_id"]]
    records = shared.deadletters()
    assert [record["reason"] for record in records] == [
        "invalid_json",
        "not_an_object",
        "line_too_long",
        "invalid_json",
    ]
    assert records[0]["raw"] == "not json"
    assert records[0]["source"]["offset"] == 0
    assert records[1]["source"]["offset"] == 9
    too_long = records[2]
    assert too_long["length"] == len(huge)
    assert too_long["raw_truncated"] is True
    assert len(too_long["raw"]) == 4096
    assert huge.decode().startswith(too_long["raw"])
    assert too_long["source"]["path"] == str(source.path)
    assert sidecar.value("loginpod_sidecar_deadletter_total", reason="invalid_json") == 2
    assert sidecar.value("loginpod_sidecar_deadletter_total", reason="line_too_long") == 1
    assert sidecar.value("loginpod_sidecar_events_read_total") == 5
    more = source.append(1)  # tailing goes on
    await wait_until(lambda: shared.event_ids() == [good["event_id"], *more])


async def test_huge_line_without_newline_does_not_stop_tailing(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(MAX_LINE_BYTES="1024")
    source.write(b"y" * 3 * 1024 * 1024)  # far larger than a line may be
    # Read to its end (not merely before any read, when the gauge is 0 too): the whole line lags, no newline yet.
    await wait_until(
        lambda: sidecar.value("loginpod_sidecar_source_lag_bytes") == 3 * 1024 * 1024, what="the big line read"
    )
    source.write(b"\n")
    ids = source.append(2)
    await wait_until(lambda: shared.event_ids() == ids)
    [record] = shared.deadletters()
    assert (record["reason"], record["length"]) == ("line_too_long", 3 * 1024 * 1024)


async def test_rotation_by_rename_loses_nothing(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(3)
    await wait_until(lambda: shared.event_ids() == ids)
    ids += source.append(2)  # possibly not read before the rename
    source.rotate()
    ids += source.append(2)
    source.rotate()
    ids += source.append(2)
    await wait_until(lambda: shared.event_ids() == ids, what="every event once, in order")
    await wait_until(lambda: sidecar.value("loginpod_sidecar_rotations_total") == 2)


async def test_two_rotations_while_stopped(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(3)
    await wait_until(lambda: shared.event_ids() == ids)
    await sidecar.stop()
    ids += source.append(2)
    source.rotate()
    ids += source.append(2)
    source.rotate()
    ids += source.append(2)
    assert source.rotated(2).exists()
    again = await start_sidecar()
    await wait_until(lambda: shared.holds(ids), what="every event once, in order")
    await wait_until(lambda: again.value("loginpod_sidecar_rotations_total") == 2)


async def test_copytruncate(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(4)
    await wait_until(lambda: shared.event_ids() == ids)
    source.copytruncate()
    ids += source.append(3)
    await wait_until(lambda: shared.holds(ids), what="every event once, in order")
    await wait_until(lambda: sidecar.value("loginpod_sidecar_truncations_total") == 1)
    source.copytruncate()
    ids += source.append(1)
    await wait_until(lambda: shared.holds(ids))
    await wait_until(lambda: sidecar.value("loginpod_sidecar_truncations_total") == 2)


async def test_truncated_while_stopped(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(4)
    await wait_until(lambda: shared.event_ids() == ids)
    await sidecar.stop()
    os.truncate(source.path, 0)
    ids += source.append(1)
    again = await start_sidecar()
    await wait_until(lambda: again.value("loginpod_sidecar_truncations_total") == 1)
    await wait_until(lambda: shared.event_ids() == ids)


async def test_resumes_from_the_checkpoint(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(3)
    await wait_until(lambda: shared.event_ids() == ids)
    await sidecar.stop()
    ids += source.append(3)
    again = await start_sidecar()
    await wait_until(lambda: again.value("loginpod_sidecar_events_written_total") == 3)
    assert shared.event_ids() == ids
    assert again.value("loginpod_sidecar_events_read_total") == 3


async def test_segments_roll_at_the_size_limit(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    await start_sidecar(SEGMENT_MAX_BYTES="1024")
    ids = source.append(20)
    await wait_until(lambda: shared.event_ids() == ids)
    segments = shared.segments()
    assert len(segments) > 5
    assert all(segment.stat().st_size <= 1024 for segment in segments)
    assert [segment.name for segment in segments] == [f"events-{n:08d}.jsonl" for n in range(1, len(segments) + 1)]


@pytest.mark.usefixtures("no_watcher")
async def test_shutdown_writes_what_the_source_holds(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(POLL_INTERVAL_MS="60000")  # no watcher, no poll: only the shutdown reads it
    ids = source.append(50)
    await sidecar.stop()
    assert shared.event_ids() == ids
    checkpoint = shared.checkpoint("tail.json")
    assert checkpoint is not None
    assert checkpoint["source"]["offset"] == source.path.stat().st_size


async def test_metrics_and_readiness(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    source.append(1)
    await wait_until(lambda: len(shared.lines()) == 1)
    response = await sidecar.get("/metrics")
    assert response.status_code == 200
    for name in (
        "loginpod_sidecar_events_read_total",
        "loginpod_sidecar_events_written_total",
        'loginpod_sidecar_deadletter_total{reason="invalid_json"}',
        "loginpod_sidecar_events_shipped_total",
        "loginpod_sidecar_ship_retries_total",
        'loginpod_sidecar_ship_batches_total{result="delivered"}',
        "loginpod_sidecar_truncations_total",
        "loginpod_sidecar_rotations_total",
        "loginpod_sidecar_source_lag_bytes",
        "loginpod_sidecar_ship_lag_events",
        "loginpod_sidecar_last_write_timestamp_seconds",
        "loginpod_sidecar_last_ship_timestamp_seconds",
        "loginpod_sidecar_watcher_running",
    ):
        assert name in response.text, name
    ready = await sidecar.get("/readyz")
    assert (ready.status_code, json.loads(ready.text)["status"]) == (200, "ready")
