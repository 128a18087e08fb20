"""The file watcher wakes the tailer long before its stat poll would; without the watcher, the poll still tails.

With POLL_INTERVAL_MS at a minute, only the watcher can bring a line to events/ within the deadlines below.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest
from podkit_testing import wait_until

if TYPE_CHECKING:
    from conftest import Shared, Sidecar, Source, StartSidecar

NO_POLL = "60000"  # ms: far beyond every deadline of these tests
PROMPTLY = 5.0  # s: a deadline well under the poll interval, and generous for a loaded machine


def watching(sidecar: Sidecar) -> bool:
    return sidecar.value("loginpod_sidecar_watcher_running") == 1


async def test_appends_and_rotations_are_picked_up_without_the_poll(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(POLL_INTERVAL_MS=NO_POLL)
    await wait_until(lambda: watching(sidecar), what="the watcher")
    ids: list[str] = []
    for round_ in range(3):  # each round after the first finds the tail idle, napping for a minute
        ids += source.append(2)
        await wait_until(lambda ids=list(ids): shared.holds(ids), within=PROMPTLY, what=f"round {round_}")
    source.rotate()
    ids += source.append(1)  # a new file: a create in the directory, not a write to the file we hold
    await wait_until(lambda: shared.holds(ids), within=PROMPTLY, what="the line after the rotation")
    assert sidecar.value("loginpod_sidecar_rotations_total") == 1
    ready = await sidecar.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_the_watch_is_set_once_the_directory_exists_and_again_after_it_is_replaced(
    source: Source, shared: Shared, start_sidecar: StartSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    source.path.parent.rmdir()  # not there yet: the webserver creates it later (local mode)
    sidecar = await start_sidecar(POLL_INTERVAL_MS=NO_POLL)
    await wait_until(lambda: "file watcher unavailable" in caplog.text, what="the failed watch")
    assert not watching(sidecar)
    source.path.parent.mkdir()
    ids = source.append(2)
    await wait_until(lambda: shared.holds(ids), within=PROMPTLY, what="events once the directory exists")
    assert watching(sidecar)

    shutil.rmtree(source.path.parent)  # the watch dies with the directory
    source.path.parent.mkdir()
    ids += source.append(1)
    await wait_until(lambda: shared.holds(ids), within=PROMPTLY, what="events in the new directory")
    await wait_until(lambda: watching(sidecar), what="the watcher set again")


@pytest.mark.usefixtures("no_watcher")
async def test_without_the_watcher_the_poll_tails_rotations_and_all(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar(POLL_INTERVAL_MS="20")
    ids = source.append(3)
    await wait_until(lambda: shared.holds(ids), what="events found by the poll")
    source.rotate()
    ids += source.append(2)
    source.copytruncate()
    ids += source.append(1)
    await wait_until(lambda: shared.holds(ids), what="every event once, in order")
    assert not watching(sidecar)
    assert sidecar.value("loginpod_sidecar_rotations_total") >= 1
    ready = await sidecar.get("/readyz")  # slower, not broken: the pod stays in service
    assert ready.status_code == 200, ready.text
