"""The fingerprint: a position holds only in the same file, with the same first bytes, at a line start."""

from __future__ import annotations

import os
from pathlib import Path

from login_sidecar.fingerprint import EMPTY_SHA256, SourcePosition, head_at, head_sha256


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def test_a_position_fingerprints_only_the_bytes_before_its_offset() -> None:
    position = SourcePosition.of((1, 2), 3, b"ab\ncd\n")
    assert position == SourcePosition(1, 2, 3, 3, head_sha256(b"ab\n"))
    assert SourcePosition.of((1, 2), 0, b"ab\n").head_sha256 == EMPTY_SHA256


def test_head_at_tells_the_same_file_from_a_rewritten_reused_or_moved_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"ab\ncd\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        me = identity(path)
        sha = head_sha256(b"ab\n")
        assert head_at(fd, me, 3, 3, sha) == b"ab\n"
        assert head_at(fd, (me[0], me[1] + 1), 3, 3, sha) is None  # another inode
        assert head_at(fd, me, 2, 2, head_sha256(b"ab")) is None  # not at a line start
        assert head_at(fd, me, 9, 3, sha) is None  # past the end
        assert head_at(fd, me, 3, 3, head_sha256(b"xy\n")) is None  # other first bytes
    finally:
        os.close(fd)
