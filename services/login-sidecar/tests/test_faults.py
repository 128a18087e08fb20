"""A full or unwritable shared volume: nothing lost, the checkpoint stays, /readyz says so, then it recovers."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import pytest
from podkit_testing import wait_until

if TYPE_CHECKING:
    from conftest import Shared, Source, StartSidecar


async def test_disk_full_keeps_the_checkpoint_and_recovers(
    source: Source, shared: Shared, start_sidecar: StartSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar = await start_sidecar()
    ids = source.append(2)
    await wait_until(lambda: shared.holds(ids))
    checkpoint = shared.checkpoint("tail.json")
    segment_size = shared.segments()[-1].stat().st_size
    real_pwrite = os.pwrite
    attempts: list[int] = []
    full = True

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if full and "/events/" in os.readlink(f"/proc/self/fd/{fd}"):
            attempts.append(offset)
            if len(attempts) == 1:  # the first attempt gets half of it onto the disk
                real_pwrite(fd, bytes(memoryview(data)[: len(data) // 2]), offset)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    more = source.append(3)
    await wait_until(lambda: sidecar.value("loginpod_sidecar_write_errors_total") >= 2, what="two failed attempts")
    ready = await sidecar.get("/readyz")
    assert ready.status_code == 503
    assert "No space left on device" in ready.json()["detail"]
    assert shared.checkpoint("tail.json") == checkpoint
    assert shared.segments()[-1].stat().st_size == segment_size  # the partial write was cut off again
    assert set(attempts) == {segment_size}  # each retry writes at the same place

    full = False
    await wait_until(lambda: shared.holds(ids + more), what="the held batch written once")
    await wait_until(lambda: sidecar.service.ready()[0])
    assert (await sidecar.get("/readyz")).status_code == 200


async def test_unwritable_shared_dir_at_start(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    shared.root.write_text("not a directory")
    sidecar = await start_sidecar(wait=False)
    await wait_until(lambda: sidecar.value("loginpod_sidecar_write_errors_total") >= 1)
    ready = await sidecar.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("cannot write the shared volume")
    ids = source.append(2)
    shared.root.unlink()
    await wait_until(lambda: shared.holds(ids), within=15, what="the start retried")
