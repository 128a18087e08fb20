"""Which file a position is in, as Vector's fingerprinter tells files apart: (st_dev, st_ino) and a checksum of
the first bytes (HEAD_BYTES). The inode names the file while it is open or renamed; the first bytes tell a
reused inode after a restart, and find a file's copy (logrotate's copytruncate) by its content.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Final

FileId = tuple[int, int]
HEAD_BYTES: Final = 256  # the fingerprint of a file: tells a reused inode or a copy from the original


def head_sha256(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


EMPTY_SHA256: Final = head_sha256(b"")  # the fingerprint at offset 0: any file holds it


@dataclass(frozen=True)
class SourcePosition:
    """How far the source has been consumed: the file, the offset, and a fingerprint of its first bytes."""

    dev: int
    ino: int
    offset: int
    head_len: int
    head_sha256: str

    @classmethod
    def of(cls, identity: FileId, offset: int, head: bytes) -> SourcePosition:
        """The position `offset` in the file `identity`, fingerprinted by its first bytes `head` (up to offset)."""
        head = head[:offset]
        return cls(*identity, offset, len(head), head_sha256(head))

    @property
    def identity(self) -> FileId:
        return (self.dev, self.ino)

    def to_json(self) -> dict[str, object]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "head_len": self.head_len,
            "head_sha256": self.head_sha256,
        }

    @classmethod
    def from_json(cls, value: object) -> SourcePosition:
        if not isinstance(value, dict):
            raise ValueError("source is not a JSON object")
        numbers = []
        for key in ("dev", "ino", "offset", "head_len"):
            number = value.get(key)
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ValueError(f"bad source {key} in {value!r}")
            numbers.append(number)
        sha = value.get("head_sha256")
        if not isinstance(sha, str):
            raise ValueError(f"bad source head_sha256 in {value!r}")
        dev, ino, offset, head_len = numbers
        return cls(dev, ino, offset, head_len, sha)


def head_at(fd: int, identity: FileId, offset: int, head_len: int, sha: str) -> bytes | None:
    """The first `head_len` bytes of the open file `fd` if it is the file `identity`, holds them with checksum
    `sha` and has a line end just before `offset` (a position handed out is always at a line start); else None.
    """
    st = os.fstat(fd)
    head = os.pread(fd, head_len, 0)
    fits = (
        (st.st_dev, st.st_ino) == identity
        and st.st_size >= offset
        and len(head) == head_len
        and head_sha256(head) == sha
        and (offset == 0 or os.pread(fd, 1, offset - 1) == b"\n")
    )
    return head if fits else None
