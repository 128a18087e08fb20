"""tail.json as its readers see it: the sidecar's own restart, and the webserver's rotation (podkit.rotation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from login_sidecar.checkpoint import TAIL_VERSION, TailCheckpoint, load_tail, save_tail
from login_sidecar.fingerprint import SourcePosition
from podkit import rotation
from podkit.volume import CheckpointError, SegmentOffset
from podkit_testing import wait_until

if TYPE_CHECKING:
    from conftest import Shared, Source, StartSidecar


def test_tail_checkpoint_round_trips_and_tells_the_webserver_where_the_sidecar_is(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    assert rotation.reader_position(path) is None  # no checkpoint yet: the webserver holds nothing
    source = SourcePosition(dev=5, ino=123456, offset=4096, head_len=64, head_sha256="ab" * 32)
    checkpoint = TailCheckpoint(source, SegmentOffset.from_json({"segment": "events-00000003.jsonl", "offset": 77}))
    save_tail(path, checkpoint, tmp_path / "events.jsonl")
    assert load_tail(path) == checkpoint
    assert rotation.reader_position(path) == (123456, 4096)
    save_tail(path, TailCheckpoint(None, checkpoint.written), tmp_path / "events.jsonl")
    assert rotation.reader_position(path) is None


def test_an_unreadable_checkpoint_holds_nothing_and_raises_nothing_in_the_webserver(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    path.write_bytes(b'{"source": {"ino": "x"')
    assert rotation.reader_position(path) is None


def test_tail_json_is_versioned_and_the_unversioned_format_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    source = SourcePosition(dev=5, ino=42, offset=10, head_len=10, head_sha256="cd" * 32)
    checkpoint = TailCheckpoint(source, SegmentOffset.from_json({"segment": "events-00000002.jsonl", "offset": 9}))
    save_tail(path, checkpoint, tmp_path / "events.jsonl")
    saved = json.loads(path.read_bytes())
    assert saved["version"] == TAIL_VERSION == 1
    assert (saved["source"]["ino"], saved["source"]["offset"]) == (42, 10)  # where the webserver reads them
    del saved["version"]  # the format before versions
    path.write_text(json.dumps(saved))
    assert load_tail(path) == checkpoint
    assert rotation.reader_position(path) == (42, 10)
    for version in (2, "1", True, -1):
        path.write_text(json.dumps({**saved, "version": version}))
        with pytest.raises(CheckpointError, match="version"):
            load_tail(path)


async def test_a_restart_after_the_upgrade_resumes_exactly_from_the_unversioned_tail_json(
    source: Source, shared: Shared, start_sidecar: StartSidecar
) -> None:
    sidecar = await start_sidecar()
    ids = source.append(3)
    await wait_until(lambda: shared.holds(ids))
    await sidecar.stop()
    tail = shared.root / "state" / "login-sidecar" / "tail.json"
    old = json.loads(tail.read_bytes())
    del old["version"]  # what the sidecar wrote before versions existed
    tail.write_text(json.dumps(old))

    ids += source.append(2)
    again = await start_sidecar()
    await wait_until(lambda: shared.holds(ids), what="the two new events after the old checkpoint")
    assert again.value("loginpod_sidecar_events_written_total") == 2  # resumed at its offset: nothing read twice
    assert again.value("loginpod_sidecar_duplicates_skipped_total") == 0
    assert again.value("loginpod_sidecar_events_read_total") == 2
    await again.stop()
    new = shared.checkpoint("tail.json")
    assert new is not None
    assert new["version"] == 1  # rewritten in the current format at the next save
    assert (new["source"]["ino"], new["source"]["offset"]) == (old["source"]["ino"], source.path.stat().st_size)
