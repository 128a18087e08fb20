"""The rotation chain on its own: order of the files, which one follows ours and when it is ready."""

from __future__ import annotations

import os
from pathlib import Path

from login_sidecar import chain


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def test_the_chain_is_oldest_first_by_number_and_ignores_other_names(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    for name in (
        "events.jsonl",
        "events.jsonl.1",
        "events.jsonl.2",
        "events.jsonl.10",
        "events.jsonl.generations.json",
    ):
        (tmp_path / name).write_bytes(b"x\n")
    (tmp_path / "events.jsonl.3").mkdir()  # not a regular file
    (tmp_path / "events.jsonl.٣").write_bytes(b"x\n")  # a digit, but not ASCII
    names = [entry.path.name for entry in chain.list_chain(source)]
    assert names == ["events.jsonl.10", "events.jsonl.2", "events.jsonl.1", "events.jsonl"]
    assert chain.concerns(source, str(tmp_path / "events.jsonl.1"))
    assert not chain.concerns(source, str(tmp_path / "other.jsonl"))


def test_the_successor_is_ready_once_it_has_data_or_is_itself_rotated(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"a\n")
    ours = identity(source)
    assert chain.successor(source, ours) == chain.Successor(None, 0)  # still the source: nothing follows
    source.rename(tmp_path / "events.jsonl.1")
    source.write_bytes(b"")
    empty = chain.successor(source, ours)
    assert (empty.ready, empty.later_bytes) == (None, 0)  # the writer may still end the old file
    source.write_bytes(b"bb\n")
    ready = chain.successor(source, ours)
    assert ready.ready is not None
    assert (ready.ready.path, ready.later_bytes) == (source, 3)
    (tmp_path / "events.jsonl.1").unlink()  # ours deleted: every file left is newer
    assert chain.successor(source, ours).ready == ready.ready
