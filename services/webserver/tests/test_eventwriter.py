"""The events file: one line per write, partial-line repair, rotation by size, reopening, and write failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from podkit import rotation
from webserver.events import build_event, encode_event
from webserver.eventwriter import EventWriteError, EventWriter


def event_line(username: str | None = "alice") -> bytes:
    event = build_event(
        event_type="login.failure",
        reason="bad_password",
        username=username,
        client_ip="127.0.0.1",
        user_agent=None,
        request_id=None,
        pod="p",
    )
    return encode_event(event)


async def test_writes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, max_bytes=1 << 20, keep=2)
    await writer.open()
    await asyncio.gather(*(writer.write(event_line(f"user{i}")) for i in range(50)))
    await writer.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert sorted(json.loads(line)["username"] for line in lines[:-1]) == sorted(f"user{i}" for i in range(50))
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)


async def test_a_partial_last_line_is_ended_before_the_next_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    whole = event_line()
    path.write_bytes(whole + whole[:40])  # a crash in the middle of a write
    writer = EventWriter(path, max_bytes=1 << 20, keep=2)
    await writer.open()
    await writer.write(whole)
    await writer.close()
    assert path.read_bytes() == whole + whole[:40] + b"\n" + whole


async def test_rotation_by_size_keeps_the_configured_number_of_files(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = event_line()
    writer = EventWriter(path, max_bytes=len(line) * 3, keep=2)
    await writer.open()
    for _ in range(10):
        await writer.write(line)
    await writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.generations.json"]
    sizes = [(tmp_path / name).stat().st_size for name in names[:3]]
    assert sizes == [len(line), len(line) * 3, len(line) * 3]  # 10 = 3 + 3 + 3 (dropped) + 1
    ledger = rotation.load(path)
    assert [g.size for g in ledger] == [len(line) * 3] * 3 + [None]
    assert [g.linked for g in ledger] == [False, True, True, True]
    assert ledger[-1].ino == path.stat().st_ino


def _checkpoint(path: Path, source: Path | None, offset: int = 0) -> None:
    """A sidecar tail.json reading `source` at `offset` (None: not started on a source yet)."""
    value = None if source is None else {"path": str(source), "ino": source.stat().st_ino, "offset": offset}
    path.write_text(json.dumps({"source": value, "segment": "events-00000001.jsonl", "segment_size": 0}))


async def test_rotation_keeps_the_files_the_reader_has_not_finished_up_to_keep_max(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    checkpoint = tmp_path / "tail.json"
    line = event_line()
    writer = EventWriter(path, max_bytes=len(line) * 2, keep=1, keep_max=3, reader_checkpoint=checkpoint)
    await writer.open()
    await writer.write(line)
    _checkpoint(checkpoint, path, len(line))  # the reader is in the first file
    first = path.stat().st_ino
    for _ in range(6):  # three rotations: the first file is held as .3
        await writer.write(line)
    assert (tmp_path / "events.jsonl.3").stat().st_ino == first
    for _ in range(2):  # one more: past the hard cap, the unread first file goes
        await writer.write(line)
    assert first not in {p.stat().st_ino for p in tmp_path.glob("events.jsonl.*") if p.suffix != ".json"}
    assert sorted(p.name for p in tmp_path.glob("events.jsonl.?")) == [
        "events.jsonl.1",
        "events.jsonl.2",
        "events.jsonl.3",
    ]
    # the reader moves on to the newest rotated file: every older one may go, down to EVENTS_FILE_KEEP
    _checkpoint(checkpoint, tmp_path / "events.jsonl.1")
    for _ in range(2):
        await writer.write(line)
    assert sorted(p.name for p in tmp_path.glob("events.jsonl.?")) == ["events.jsonl.1", "events.jsonl.2"]
    await writer.close()


async def test_without_a_reader_checkpoint_yet_rotated_files_are_held_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = event_line()
    writer = EventWriter(path, max_bytes=len(line), keep=1, keep_max=4, reader_checkpoint=tmp_path / "none.json")
    await writer.open()
    for _ in range(8):
        await writer.write(line)
    await writer.close()
    assert sorted(p.name for p in tmp_path.glob("events.jsonl.?")) == [f"events.jsonl.{i}" for i in range(1, 5)]


async def test_a_fragment_from_another_writer_is_ended_before_our_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, max_bytes=1 << 20, keep=2)
    await writer.open()
    await writer.write(event_line("one"))
    with path.open("ab") as other:
        other.write(b'{"someone":"else, no newline')
    await writer.write(event_line("two"))
    await writer.write(event_line("three"))
    await writer.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"someone":"else, no newline'
    assert [json.loads(lines[i])["username"] for i in (0, 2, 3)] == ["one", "two", "three"]


async def test_the_file_is_reopened_when_replaced_or_removed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, max_bytes=1 << 20, keep=2)
    await writer.open()
    await writer.write(event_line("one"))
    path.rename(tmp_path / "moved.jsonl")  # someone rotated it for us
    await writer.write(event_line("two"))
    path.unlink()
    await writer.write(event_line("three"))
    await writer.close()
    assert json.loads((tmp_path / "moved.jsonl").read_bytes())["username"] == "one"
    assert json.loads(path.read_bytes())["username"] == "three"


async def test_write_errors_raise_and_a_missing_directory_recovers(tmp_path: Path) -> None:
    path = tmp_path / "later" / "events.jsonl"
    writer = EventWriter(path, max_bytes=1 << 20, keep=2)
    await writer.open()
    assert writer.writable()[0] is False
    with pytest.raises(EventWriteError):
        await writer.write(event_line())
    path.parent.mkdir()
    await writer.write(event_line())
    assert writer.writable() == (True, "ok")
    await writer.close()
