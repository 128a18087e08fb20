from __future__ import annotations

from pathlib import Path

import pytest
from adapter import reader
from adapter.reader import read_batch


def test_a_batch_takes_whole_lines_only(shared: Path) -> None:
    events = shared / "events"
    (events / "events-00000001.jsonl").write_bytes(b"one\ntwo\nthr")
    batch = read_batch(events, 1, 0, 10, closed=False)
    assert batch.lines == [b"one", b"two"]
    assert (batch.start, batch.end) == (0, 8)
    assert read_batch(events, 1, 8, 10, closed=False).lines == []


def test_a_batch_stops_at_the_maximum_and_the_next_one_resumes(shared: Path) -> None:
    events = shared / "events"
    (events / "events-00000001.jsonl").write_bytes(b"".join(b"line %d\n" % i for i in range(25)))
    first = read_batch(events, 1, 0, 10, closed=False)
    second = read_batch(events, 1, first.end, 10, closed=False)
    third = read_batch(events, 1, second.end, 10, closed=False)
    assert [len(b.lines) for b in (first, second, third)] == [10, 10, 5]
    assert first.lines[0] == b"line 0"
    assert third.lines[-1] == b"line 24"
    assert third.end == (events / "events-00000001.jsonl").stat().st_size


def test_a_line_longer_than_a_read_chunk(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "READ_CHUNK", 7)
    events = shared / "events"
    (events / "events-00000001.jsonl").write_bytes(b"a" * 30 + b"\nb\n" + b"c" * 20)
    batch = read_batch(events, 1, 0, 10, closed=False)
    assert batch.lines == [b"a" * 30, b"b"]
    assert batch.end == 33


def test_a_closed_segment_gives_its_torn_tail_as_a_last_line(shared: Path) -> None:
    events = shared / "events"
    (events / "events-00000001.jsonl").write_bytes(b'{"a": 1}\n{"b"')
    batch = read_batch(events, 1, 0, 10, closed=True)
    assert batch.lines == [b'{"a": 1}', b'{"b"']
    assert batch.end == 13
