"""Closed segments are deleted once the adapter (and the shipper, when on) are past them; never before."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from podkit_testing import Fault, SinkServer, wait_until

if TYPE_CHECKING:
    from conftest import Shared, Source, StartSidecar


def adapter_at(shared: Shared, segment: str, offset: int) -> None:
    state = shared.root / "state" / "adapter"
    state.mkdir(parents=True, exist_ok=True)
    (state / "xml.json").write_text(json.dumps({"segment": segment, "offset": offset}))


def names(shared: Shared) -> list[str]:
    return [segment.name for segment in shared.segments()]


async def test_keeps_everything_without_an_adapter_checkpoint(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(SEGMENT_MAX_BYTES="1024")
    ids = source.append(12)
    await wait_until(lambda: shared.holds(ids))
    await sidecar.stop()  # retention ran many times meanwhile (every 50 ms here)
    assert names(shared)[0] == "events-00000001.jsonl"
    assert sidecar.value("loginpod_sidecar_segments_deleted_total") == 0


async def test_deletes_what_the_adapter_is_done_with(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(SEGMENT_MAX_BYTES="1024")
    ids = source.append(12)
    await wait_until(lambda: shared.holds(ids))
    segments = shared.segments()
    third = segments[2]
    adapter_at(shared, third.name, third.stat().st_size - 1)  # inside the third: the first two are done
    await wait_until(lambda: sidecar.value("loginpod_sidecar_segments_deleted_total") == 2)
    assert names(shared)[0] == third.name
    last = shared.segments()[-1]
    adapter_at(shared, last.name, last.stat().st_size)  # at the end of the current one
    await wait_until(lambda: names(shared) == [last.name], what="all but the current one deleted")
    assert shared.event_ids() == ids[-len(last.read_bytes().splitlines()) :]


async def test_waits_for_the_shipper_too(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    async with SinkServer() as sink:
        sink.outage = Fault(503)
        sidecar = await start_sidecar(SEGMENT_MAX_BYTES="1024", SINK_URL=sink.url)
        ids = source.append(12)
        await wait_until(lambda: shared.holds(ids))
        last = shared.segments()[-1]
        adapter_at(shared, last.name, last.stat().st_size)
        await wait_until(lambda: sidecar.value("loginpod_sidecar_ship_retries_total", reason="status 503") >= 2)
        assert names(shared)[0] == "events-00000001.jsonl"  # not shipped yet: kept
        sink.outage = None
        await wait_until(lambda: names(shared) == [last.name], what="shipped, then deleted")
        await wait_until(lambda: len(sink.accepted_lines()) == 12)
