"""Follows the source file the way Fluent Bit's tail input and Filebeat do, and hands out complete lines.

Files are known by (st_dev, st_ino), not by name. When the name points to another file (rotation by rename),
the old file is read to its end before moving on to the file that follows it in the rotation chain
(path.N ... path.2, path.1, path: oldest first), so nothing is lost to a rename, even several while the
sidecar was stopped. A file that shrinks under us, or whose first bytes change, was truncated in place
(copytruncate): if its copy is in the chain (same first bytes), the copy is finished first, then the
truncated file is read again from 0. The first bytes (HEAD_BYTES) also tell a reused inode on restart.

A partial last line is held back until its newline arrives; a line longer than `max_line_bytes` is not held
in memory but skipped to its newline and reported (its first bytes only) as `Rejected`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from podkit import rotation

log = logging.getLogger("login_sidecar.tailer")

FileId = tuple[int, int]
HEAD_BYTES: Final = 256  # the fingerprint of a file: tells a reused inode or a copy from the original


@dataclass(frozen=True)
class SourcePosition:
    """How far the source has been consumed: the file, the offset, and a fingerprint of its first bytes."""

    dev: int
    ino: int
    offset: int
    head_len: int
    head_sha256: str

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
        head_sha256 = value.get("head_sha256")
        if not isinstance(head_sha256, str):
            raise ValueError(f"bad source head_sha256 in {value!r}")
        dev, ino, offset, head_len = numbers
        return cls(dev, ino, offset, head_len, head_sha256)


@dataclass(frozen=True)
class Lines:
    """Complete lines, each ending in a newline, found at `offset` of the file."""

    offset: int
    data: bytes


@dataclass(frozen=True)
class Rejected:
    """A line that is not handed out: `line_too_long`, or `incomplete_line` (no newline before a rotation)."""

    reason: str
    offset: int
    length: int  # without the newline
    head: bytes  # its first bytes, for the dead-letter record


@dataclass(frozen=True)
class TailRead:
    file: FileId  # the file `parts` come from
    path: Path  # where that file was found when it was opened
    parts: list[Lines | Rejected]
    position: SourcePosition  # everything up to here is in `parts` (or in earlier reads)
    truncated: bool  # the file was truncated (read again from 0, or from its copy)
    rotated: bool  # the file is finished: `position` is in the next one
    more: bool  # stopped at the byte budget or moved to another file: call again without waiting
    lost_bytes: int = 0  # bytes of generations the writer deleted before we read them (found in this read)


@dataclass(frozen=True)
class _Entry:
    path: Path
    identity: FileId
    size: int


@dataclass
class _LongLine:
    offset: int
    head: bytes
    length: int


class Tailer:
    """Reads complete lines from `path` and the files it is rotated to; not thread-safe (one caller)."""

    def __init__(self, path: Path, *, max_line_bytes: int, keep_head: int, read_bytes: int = 1 << 20) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.keep_head = keep_head
        self.read_bytes = read_bytes
        self.lag_bytes = 0  # bytes in the source files not yet consumed (complete lines or not)
        self._resume: SourcePosition | None = None
        self._fd = -1
        self._identity: FileId = (0, 0)
        self._opened_as = path
        self.offset = 0  # every byte before it was handed out
        self._read_pos = 0
        self._partial = b""  # bytes after `offset` waiting for their newline
        self._long: _LongLine | None = None
        self._head = b""
        self._later_bytes = 0
        self._truncated_on_open = False
        self._lost = 0  # found in the current read(): see _count_gap
        self._previous_ino = 0

    def resume(self, position: SourcePosition | None) -> None:
        """Start from a checkpoint (or, with None, from the oldest file of the chain) on the first read."""
        self._resume = position

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def position(self) -> SourcePosition | None:
        if self._fd < 0:
            return self._resume
        if len(self._head) < HEAD_BYTES and self.offset > len(self._head):
            self._head = os.pread(self._fd, min(HEAD_BYTES, self.offset), 0)
        return self._fingerprinted()

    def _fingerprinted(self) -> SourcePosition:
        """The position with the head as last read (read() keeps it filled), without reading the file."""
        head = self._head[: self.offset]
        return SourcePosition(*self._identity, self.offset, len(head), hashlib.sha256(head).hexdigest())

    def concerns(self, path: str) -> bool:
        """Whether a change at `path` may matter to this tailer: the source or one of its rotated names."""
        return os.path.basename(path).startswith(self.path.name)

    def changed(self) -> bool:
        """Whether read() may find something: a cheap look (two stats) for idle polls, which need no thread."""
        if self._fd < 0:
            return True
        if os.fstat(self._fd).st_size != self._read_pos:
            return True
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def read(self, max_bytes: int) -> TailRead | None:
        """Up to about `max_bytes` of new complete lines; None while no source file exists yet.

        Raises OSError when the source cannot be read (permissions, I/O errors).
        """
        self._lost = 0
        if self._fd < 0 and not self._open_first():
            return None
        file, opened_as = self._identity, self._opened_as
        successor = self._ready_successor()  # looked at before reading: see _ready_successor
        parts: list[Lines | Rejected] = []
        truncated, self._truncated_on_open = self._truncated_on_open, False
        switched = False
        size = os.fstat(self._fd).st_size
        if self._was_truncated(size):
            truncated = True
            self._position_after_truncation()
            switched = self._identity != file
            if switched:
                successor = None
            size = os.fstat(self._fd).st_size
        budget = max_bytes
        while not switched and budget > 0 and self._read_pos < size:
            want = min(self.read_bytes, budget, size - self._read_pos)  # no 1 MiB buffer for an idle poll
            data = os.pread(self._fd, want, self._read_pos)
            if not data:
                break
            self._read_pos += len(data)
            budget -= len(data)
            self._consume(data, parts)
        at_eof = not switched and self._read_pos >= size
        self.lag_bytes = max(0, size - self.offset) + self._later_bytes
        rotated = False
        if at_eof and successor is not None:
            rotated = self._switch_to(successor, parts)
        position = self.position()
        assert position is not None
        more = not at_eof or rotated or switched
        return TailRead(file, opened_as, parts, position, truncated, rotated, more, self._lost)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    # --- lines

    def _consume(self, data: bytes, parts: list[Lines | Rejected]) -> None:
        if self._long is not None:
            newline = data.find(b"\n")
            if newline < 0:
                self._long.length += len(data)
                return
            long, self._long = self._long, None
            length = long.length + newline
            parts.append(Rejected("line_too_long", long.offset, length, long.head))
            self.offset = long.offset + length + 1
            data = data[newline + 1 :]
        if self._partial:
            data = self._partial + data
        end = data.rfind(b"\n") + 1
        if end:
            parts.append(Lines(self.offset, data[:end]))
            self.offset += end
        rest = data[end:]
        if len(rest) > self.max_line_bytes:
            self._long = _LongLine(self.offset, rest[: self.keep_head], len(rest))
            self._partial = b""
        else:
            self._partial = rest

    def _leftover(self) -> Rejected | None:
        """The line a finished file ends with, if it has no newline: it will never be completed."""
        if self._long is not None:
            return Rejected("incomplete_line", self._long.offset, self._long.length, self._long.head)
        if self._partial:
            return Rejected("incomplete_line", self.offset, len(self._partial), self._partial[: self.keep_head])
        return None

    # --- files

    def _chain(self) -> list[_Entry]:
        """The source's files, oldest first: path.N, ..., path.2, path.1, path (regular files that exist)."""
        prefix = self.path.name + "."
        try:
            names = os.listdir(self.path.parent)
        except FileNotFoundError:
            names = []
        generations = sorted(
            (int(suffix), name)
            for name in names
            if name.startswith(prefix) and (suffix := name[len(prefix) :]).isascii() and suffix.isdigit()
        )
        paths = [self.path.with_name(name) for _, name in reversed(generations)] + [self.path]
        entries = []
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                entries.append(_Entry(path, (st.st_dev, st.st_ino), st.st_size))
        return entries

    def _open_first(self) -> bool:
        chain = self._chain()
        if not chain:
            return False
        resume, self._resume = self._resume, None
        if resume is not None:
            same = [entry for entry in chain if entry.identity == resume.identity]
            for entry in same + [entry for entry in chain if entry.identity != resume.identity]:
                if self._open_at(entry, resume.offset, resume.head_len, resume.head_sha256):
                    if entry.identity != resume.identity:
                        log.warning("resuming in a copy of the checkpointed file", extra={"file": str(entry.path)})
                    return True
            self._truncated_on_open = bool(same)
            log.warning(
                "the checkpointed source file is gone or was truncated; starting from the oldest file",
                extra={"file": str(chain[0].path), "offset": resume.offset},
            )
            if not same:
                self._count_gap(resume.ino, chain[0], read_to=resume.offset)
        for entry in chain:
            if self._open_at(entry, 0, 0, hashlib.sha256(b"").hexdigest()):
                log.info("following the source", extra={"file": str(entry.path)})
                return True
        self._resume = resume  # every file vanished between the listing and the open: try again later
        return False

    def _open_at(self, entry: _Entry, offset: int, head_len: int, head_sha256: str) -> bool:
        """Open `entry` at `offset` if it is still that file and holds the fingerprinted bytes up to there."""
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            st = os.fstat(fd)
            head = os.pread(fd, head_len, 0)
            fits = (
                (st.st_dev, st.st_ino) == entry.identity
                and st.st_size >= offset
                and len(head) == head_len
                and hashlib.sha256(head).hexdigest() == head_sha256
                and (offset == 0 or os.pread(fd, 1, offset - 1) == b"\n")
            )
        except OSError:
            os.close(fd)
            raise
        if not fits:
            os.close(fd)
            return False
        self.close()
        self._fd, self._identity, self._opened_as = fd, entry.identity, entry.path
        self.offset = self._read_pos = offset
        self._partial, self._long, self._head = b"", None, head
        return True

    def _ready_successor(self) -> _Entry | None:
        """The file to move to once ours is read to its end, when ours is rotated and the next one is ready.

        The next file is ready when it has data or is itself rotated: a writer that rotates by rename writes
        its last line to the old file before the first to the new one, so seeing the new one non-empty
        before reading the old one to its end means nothing more will be added to the old one.
        """
        self._later_bytes = 0
        try:
            st = os.stat(self.path)
            at_path: FileId | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            at_path = None
        if at_path == self._identity:
            return None
        chain = self._chain()
        identities = [entry.identity for entry in chain]
        # Ours rotated out of the chain (deleted): every file left is newer.
        later = chain[identities.index(self._identity) + 1 :] if self._identity in identities else chain
        self._later_bytes = sum(entry.size for entry in later)
        if not later:
            return None
        successor = later[0]
        return successor if successor.size > 0 or successor.path != self.path else None

    def _switch_to(self, successor: _Entry, parts: list[Lines | Rejected]) -> bool:
        leftover = self._leftover()
        previous = self._opened_as
        self._previous_ino = self._identity[1]
        if not self._open_at(successor, 0, 0, hashlib.sha256(b"").hexdigest()):
            return False  # renamed again meanwhile: look again on the next read
        if leftover is not None:
            parts.append(leftover)
        self._count_gap(self._previous_ino, successor, read_to=None)
        log.info("source rotated", extra={"finished": str(previous), "next": str(successor.path)})
        return True

    def _count_gap(self, from_ino: int, successor: _Entry, *, read_to: int | None) -> None:
        """Count, log and report the bytes the writer deleted between the file we leave and `successor`.

        The writer's rotation ledger (podkit.rotation) says which generations lay between them; `read_to` is
        how far we had read the file we leave when it is gone (a restart), None when we read it to its end.
        """
        gap = rotation.gap(rotation.load(self.path), from_ino, successor.identity[1])
        if gap is None:
            if read_to is not None:
                log.error(
                    "the checkpointed source file is gone and the rotation ledger cannot tell what was lost",
                    extra={"next": str(successor.path)},
                )
            return
        lost = gap.skipped_bytes
        if read_to is not None and gap.first_size is not None:
            lost += max(0, gap.first_size - read_to)
        if lost or gap.generations:
            self._lost += lost
            log.error(
                "source files were deleted before they were read: events lost",
                extra={"lost_bytes": lost, "skipped_generations": gap.generations, "next": str(successor.path)},
            )

    def _was_truncated(self, size: int) -> bool:
        if size < self._read_pos:
            return True
        # Truncated and written again up to or past our offset before we looked: the first bytes differ.
        return bool(self._head) and os.pread(self._fd, len(self._head), 0) != self._head

    def _position_after_truncation(self) -> None:
        """Continue in the file's copy if logrotate left one (copytruncate), else read it again from 0."""
        position = self._fingerprinted()  # the file now holds other bytes: use the head read before
        if position.offset > 0:
            for entry in reversed(self._chain()):
                if entry.identity != self._identity and self._open_at(
                    entry, position.offset, position.head_len, position.head_sha256
                ):
                    log.warning(
                        "source truncated in place; finishing its copy first",
                        extra={"copy": str(entry.path), "offset": position.offset},
                    )
                    return
        log.warning("source truncated in place; reading it again from the start", extra={"file": str(self.path)})
        self.offset = self._read_pos = 0
        self._partial, self._long, self._head = b"", None, b""
