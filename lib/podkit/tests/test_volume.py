"""podkit.volume: the one statement of the shared volume's layout, segment names, offset checkpoint and
dead-letter appends, as the sidecar and the adapter both rely on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from podkit import volume
from podkit.volume import (
    ADAPTER,
    SIDECAR,
    CheckpointError,
    DeadLetter,
    SegmentOffset,
    Volume,
    list_segments,
    load_offset,
    save_offset,
    segment_name,
    segment_number,
)


def test_the_layout_under_shared_dir() -> None:
    shared = Volume(Path("/shared"))
    assert shared.events_dir == Path("/shared/events")
    assert shared.xml_dir == Path("/shared/xml")
    assert shared.checkpoint(SIDECAR, "tail") == Path("/shared/state/login-sidecar/tail.json")
    assert shared.conversion_checkpoint == Path("/shared/state/adapter/xml.json")
    assert shared.deadletter(ADAPTER) == Path("/shared/deadletter/adapter.jsonl")


def test_segments_are_listed_by_number_and_other_files_ignored(tmp_path: Path) -> None:
    for name in ("events-00000010.jsonl", "events-00000002.jsonl", ".events-00000003.jsonl.tmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_segments(tmp_path) == [2, 10]
    assert list_segments(tmp_path / "missing") == []
    assert segment_name(2) == "events-00000002.jsonl"
    assert segment_number("events-00000002.jsonl") == 2
    assert segment_number("events-2.jsonl") is None


def test_the_offset_checkpoint_is_versioned_and_ordered(tmp_path: Path) -> None:
    path = tmp_path / "xml.json"
    save_offset(path, SegmentOffset(3, 77))
    assert json.loads(path.read_text()) == {"version": 1, "segment": "events-00000003.jsonl", "offset": 77}
    assert load_offset(path) == SegmentOffset(3, 77)
    assert SegmentOffset(2, 900) < SegmentOffset(3, 0) < SegmentOffset(3, 1)
    assert load_offset(tmp_path / "none.json") is None


def test_the_format_from_before_versions_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ship.json"
    path.write_text('{"offset": 77, "segment": "events-00000003.jsonl"}\n')  # as the first release wrote it
    assert load_offset(path) == SegmentOffset(3, 77)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '{"segment": "elsewhere", "offset": 1}',
        '{"segment": "events-00000001.jsonl", "offset": -1}',
        '{"segment": "events-00000001.jsonl", "offset": true}',
        '{"version": 2, "segment": "events-00000001.jsonl", "offset": 1}',
        '{"version": "1", "segment": "events-00000001.jsonl", "offset": 1}',
    ],
)
def test_a_bad_checkpoint_is_refused_not_guessed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "xml.json"
    path.write_text(content)
    with pytest.raises(CheckpointError, match=r"xml\.json"):
        load_offset(path)


def test_dead_letters_are_stamped_appended_and_survive_an_operator_emptying_them(tmp_path: Path) -> None:
    path = tmp_path / "deadletter" / "adapter.jsonl"
    dead = DeadLetter(path)
    dead.write([{"reason": "one"}, {"reason": "two"}])
    dead.write([])
    first = [json.loads(line) for line in path.read_text().splitlines()]
    assert [record["reason"] for record in first] == ["one", "two"]
    assert all(record["ts"].endswith("Z") for record in first)
    path.rename(tmp_path / "taken-away.jsonl")  # an operator moves the file while the service runs
    dead.write([{"reason": "three"}])
    assert [json.loads(line)["reason"] for line in path.read_text().splitlines()] == ["three"]


def test_a_failed_dead_letter_write_leaves_no_torn_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "login-sidecar.jsonl"
    dead = DeadLetter(path)
    dead.write([{"reason": "kept"}])
    before = path.read_bytes()

    def failing_sync(fd: int) -> None:
        raise OSError(5, "injected EIO")

    monkeypatch.setattr(volume.os, "fdatasync", failing_sync)
    with pytest.raises(OSError, match="injected"):
        dead.write([{"reason": "lost", "raw": "x" * 10_000}])
    assert path.read_bytes() == before
