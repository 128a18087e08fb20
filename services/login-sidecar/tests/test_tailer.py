"""The Tailer alone: complete lines only, long lines not held in memory, rotation and copytruncate."""

from __future__ import annotations

import os
from pathlib import Path

from login_sidecar.framing import Lines, Rejected
from login_sidecar.tailer import Tailer, TailRead
from podkit import rotation


def tailer(path: Path, max_line_bytes: int = 1024) -> Tailer:
    return Tailer(path, max_line_bytes=max_line_bytes, keep_head=64, read_bytes=4096)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def lines_of(read: TailRead | None) -> list[bytes]:
    assert read is not None
    return [line for part in read.parts if isinstance(part, Lines) for line in part.data.splitlines()]


def read_all(t: Tailer) -> list[bytes]:
    """Everything available now, following switches to the next file."""
    lines: list[bytes] = []
    while True:
        read = t.read(1 << 20)
        if read is None:
            return lines
        lines += lines_of(read)
        if not read.more:
            return lines


def test_waits_for_the_source_to_exist(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    t = tailer(path)
    assert t.read(1 << 20) is None
    append(path, b'{"a":1}\n')
    assert lines_of(t.read(1 << 20)) == [b'{"a":1}']
    t.close()


def test_partial_line_is_held_back_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"a":1}\n{"b":')
    t = tailer(path)
    first = t.read(1 << 20)
    assert lines_of(first) == [b'{"a":1}']
    assert first is not None
    assert first.position.offset == 8
    append(path, b"2")
    assert lines_of(t.read(1 << 20)) == []
    append(path, b'}\n{"c":3}\n')
    second = t.read(1 << 20)
    assert lines_of(second) == [b'{"b":2}', b'{"c":3}']
    assert second is not None
    assert second.parts[0] == Lines(8, b'{"b":2}\n{"c":3}\n')
    t.close()


def test_long_line_is_skipped_to_its_newline_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"a":1}\n' + b"x" * 3000)
    t = tailer(path, max_line_bytes=1024)
    assert lines_of(t.read(1 << 20)) == [b'{"a":1}']
    append(path, b"y" * 5000)
    assert lines_of(t.read(1 << 20)) == []
    assert t.position() is not None
    assert t.position().offset == 8
    append(path, b'z\n{"b":2}\n')
    read = t.read(1 << 20)
    assert read is not None
    assert read.parts[0] == Rejected("line_too_long", 8, 8001, b"x" * 64)
    assert lines_of(read) == [b'{"b":2}']
    assert read.position.offset == 8 + 8002 + 8
    t.close()


def test_rotated_file_is_finished_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n')
    t = tailer(path)
    assert read_all(t) == [b'{"n":1}']
    append(path, b'{"n":2}\n')  # not read before the rename
    os.rename(path, tmp_path / "events.jsonl.1")
    append(path, b'{"n":3}\n')
    assert read_all(t) == [b'{"n":2}', b'{"n":3}']
    t.close()


def test_waits_on_the_old_file_while_the_new_one_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n')
    t = tailer(path)
    read_all(t)
    os.rename(path, tmp_path / "events.jsonl.1")
    path.touch()
    assert read_all(t) == []
    append(tmp_path / "events.jsonl.1", b'{"n":2}\n')  # a late write to the old file is still read
    assert read_all(t) == [b'{"n":2}']
    append(path, b'{"n":3}\n')
    assert read_all(t) == [b'{"n":3}']
    t.close()


def test_partial_line_left_in_a_rotated_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n{"n":')
    t = tailer(path)
    read_all(t)
    os.rename(path, tmp_path / "events.jsonl.1")
    append(path, b'{"n":3}\n')
    read = t.read(1 << 20)
    assert read is not None
    assert read.rotated
    assert read.parts == [Rejected("incomplete_line", 8, 5, b'{"n":')]
    assert lines_of(t.read(1 << 20)) == [b'{"n":3}']
    t.close()


def test_copytruncate_finishes_the_copy_then_reads_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n')
    t = tailer(path)
    assert read_all(t) == [b'{"n":1}']
    append(path, b'{"n":2}\n')  # written before the copy, not read yet
    copy = tmp_path / "events.jsonl.1"
    copy.write_bytes(path.read_bytes())
    os.truncate(path, 0)
    append(path, b'{"n":3}\n')
    first = t.read(1 << 20)
    assert first is not None
    assert first.truncated
    assert read_all(t) == [b'{"n":2}', b'{"n":3}']
    t.close()


def test_truncation_without_a_copy_reads_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n{"n":2}\n')
    t = tailer(path)
    read_all(t)
    os.truncate(path, 0)
    append(path, b'{"n":3}\n')
    read = t.read(1 << 20)
    assert read is not None
    assert read.truncated
    assert lines_of(read) == [b'{"n":3}']
    t.close()


def test_resumes_from_a_position_in_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n{"n":2}\n')
    first = tailer(path)
    first.read(8)  # only the first line
    position = first.position()
    first.close()
    os.rename(path, tmp_path / "events.jsonl.1")
    append(path, b'{"n":3}\n')
    os.rename(tmp_path / "events.jsonl.1", tmp_path / "events.jsonl.2")
    os.rename(path, tmp_path / "events.jsonl.1")
    append(path, b'{"n":4}\n')
    again = tailer(path)
    again.resume(position)
    assert read_all(again) == [b'{"n":2}', b'{"n":3}', b'{"n":4}']
    again.close()


def test_resume_in_a_reused_inode_does_not_skip_its_start(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append(path, b'{"n":1}\n' * 40)
    first = tailer(path)
    read_all(first)
    position = first.position()
    first.close()
    path.write_bytes(b'{"n":2}\n' * 50)  # same inode, other bytes: the fingerprint tells
    again = tailer(path)
    again.resume(position)
    assert read_all(again) == [b'{"n":2}'] * 50
    again.close()


def _rotate(path: Path, ledger: list[rotation.Generation], first_line: bytes) -> None:
    """What the webserver does: path -> path.1, a new path, and the ledger linking the two."""
    last = ledger[-1]
    ledger[-1] = rotation.Generation(last.number, last.ino, path.stat().st_size, last.linked)
    path.rename(path.with_name(path.name + ".1"))
    append(path, first_line)
    ledger.append(rotation.Generation(last.number + 1, path.stat().st_ino, None, True))
    rotation.save(path, ledger)


def _first_generation_read(tmp_path: Path) -> tuple[Path, list[rotation.Generation], Tailer]:
    """A source with its ledger (one generation), read to its end by a new tailer."""
    path = tmp_path / "events.jsonl"
    append(path, b'{"a":1}\n')
    ledger = [rotation.Generation(1, path.stat().st_ino, None, False)]
    rotation.save(path, ledger)
    t = tailer(path)
    assert read_all(t) == [b'{"a":1}']
    return path, ledger, t


def test_generations_deleted_before_they_were_read_are_counted_in_bytes(tmp_path: Path) -> None:
    path, ledger, t = _first_generation_read(tmp_path)
    _rotate(path, ledger, b'{"b":2}\n{"b":3}\n')  # a -> .1, b at path
    _rotate(path, ledger, b'{"c":4}\n')  # b -> .1 (a's name gone, still open here), c at path
    (tmp_path / "events.jsonl.1").unlink()  # b deleted unread: the writer's hard cap
    reads = []
    while (read := t.read(1 << 20)) is not None:
        reads.append(read)
        if not read.more:
            break
    assert [line for read in reads for line in lines_of(read)] == [b'{"c":4}']
    assert sum(read.lost_bytes for read in reads) == len(b'{"b":2}\n{"b":3}\n')
    t.close()


def test_an_ordinary_rotation_loses_nothing_by_the_ledger(tmp_path: Path) -> None:
    path, ledger, t = _first_generation_read(tmp_path)
    _rotate(path, ledger, b'{"b":2}\n')
    read = t.read(1 << 20)
    assert read is not None
    assert read.rotated
    assert read.lost_bytes == 0
    assert read_all(t) == [b'{"b":2}']
    t.close()


def test_resuming_after_the_checkpointed_file_was_deleted_counts_its_unread_rest(tmp_path: Path) -> None:
    path, ledger, t = _first_generation_read(tmp_path)
    append(path, b'{"a":2}\n')  # written after the checkpoint
    position = t.position()
    t.close()  # the sidecar stops at {"a":1}
    assert position is not None
    _rotate(path, ledger, b'{"b":3}\n')
    (tmp_path / "events.jsonl.1").unlink()  # a deleted unread past the writer's hard cap
    restarted = tailer(path)
    restarted.resume(position)
    read = restarted.read(1 << 20)
    assert read is not None
    assert lines_of(read) == [b'{"b":3}']
    assert read.lost_bytes == len(b'{"a":2}\n')
    restarted.close()
