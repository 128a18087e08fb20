"""Follows the source file the way Fluent Bit's tail input and Vector's file watcher do, and hands out complete
lines. The seams are Vector's file source's: which file a position is in (login_sidecar.fingerprint), which
file comes next (login_sidecar.chain, the rotation chain and the writer's ledger), and lines cut from bytes
(login_sidecar.framing); this module opens and reads the files and ties the three together.

Files are known by (st_dev, st_ino), not by name. When the name points to another file (rotation by rename),
the old file is read to its end before moving on to the file that follows it in the rotation chain
(path.N ... path.2, path.1, path: oldest first), so nothing is lost to a rename, even several while the
sidecar was stopped. A file that shrinks under us, or whose first bytes change, was truncated in place
(copytruncate): if its copy is in the chain (same first bytes), the copy is finished first, then the
truncated file is read again from 0. The first bytes (HEAD_BYTES) also tell a reused inode on restart.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from login_sidecar import chain
from login_sidecar.chain import ChainFile
from login_sidecar.fingerprint import EMPTY_SHA256, HEAD_BYTES, FileId, SourcePosition, head_at
from login_sidecar.framing import LineFramer, Lines, Rejected

log = logging.getLogger("login_sidecar.tailer")


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


class Tailer:
    """Reads complete lines from `path` and the files it is rotated to; not thread-safe (one caller)."""

    def __init__(self, path: Path, *, max_line_bytes: int, keep_head: int, read_bytes: int = 1 << 20) -> None:
        self.path = path
        self.read_bytes = read_bytes
        self.lag_bytes = 0  # bytes in the source files not yet consumed (complete lines or not)
        self._resume: SourcePosition | None = None
        self._fd = -1
        self._identity: FileId = (0, 0)
        self._opened_as = path
        self._framer = LineFramer(max_line_bytes=max_line_bytes, keep_head=keep_head)
        self._read_pos = 0
        self._head = b""
        self._later_bytes = 0
        self._truncated_on_open = False
        self._lost = 0  # found in the current read(): see _count_gap

    @property
    def offset(self) -> int:
        """Every byte of the current file before it was handed out."""
        return self._framer.offset

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
        return SourcePosition.of(self._identity, self.offset, self._head)

    def concerns(self, path: str) -> bool:
        """Whether a change at `path` may matter to this tailer: the source or one of its rotated names."""
        return chain.concerns(self.path, path)

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
        successor = self._ready_successor()  # looked at before reading: see chain.successor
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
            parts += self._framer.feed(data)
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

    # --- files

    def _open_first(self) -> bool:
        files = chain.list_chain(self.path)
        if not files:
            return False
        resume, self._resume = self._resume, None
        if resume is not None:
            same = [entry for entry in files if entry.identity == resume.identity]
            for entry in same + [entry for entry in files if entry.identity != resume.identity]:
                if self._open_at(entry, resume.offset, resume.head_len, resume.head_sha256):
                    if entry.identity != resume.identity:
                        log.warning("resuming in a copy of the checkpointed file", extra={"file": str(entry.path)})
                    return True
            self._truncated_on_open = bool(same)
            log.warning(
                "the checkpointed source file is gone or was truncated; starting from the oldest file",
                extra={"file": str(files[0].path), "offset": resume.offset},
            )
            if not same:
                self._count_gap(resume.ino, files[0], read_to=resume.offset)
        for entry in files:
            if self._open_at(entry, 0, 0, EMPTY_SHA256):
                log.info("following the source", extra={"file": str(entry.path)})
                return True
        self._resume = resume  # every file vanished between the listing and the open: try again later
        return False

    def _open_at(self, entry: ChainFile, offset: int, head_len: int, head_sha256: str) -> bool:
        """Open `entry` at `offset` if it is still that file and holds the fingerprinted bytes up to there."""
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            head = head_at(fd, entry.identity, offset, head_len, head_sha256)
        except OSError:
            os.close(fd)
            raise
        if head is None:
            os.close(fd)
            return False
        self.close()
        self._fd, self._identity, self._opened_as = fd, entry.identity, entry.path
        self._read_pos = offset
        self._framer.reset(offset)
        self._head = head
        return True

    def _ready_successor(self) -> ChainFile | None:
        """The file to move to once ours is read to its end (chain.successor); notes the later files' bytes."""
        successor = chain.successor(self.path, self._identity)
        self._later_bytes = successor.later_bytes
        return successor.ready

    def _switch_to(self, successor: ChainFile, parts: list[Lines | Rejected]) -> bool:
        leftover = self._framer.leftover()
        previous = self._opened_as
        previous_ino = self._identity[1]
        if not self._open_at(successor, 0, 0, EMPTY_SHA256):
            return False  # renamed again meanwhile: look again on the next read
        if leftover is not None:
            parts.append(leftover)
        self._count_gap(previous_ino, successor, read_to=None)
        log.info("source rotated", extra={"finished": str(previous), "next": str(successor.path)})
        return True

    def _count_gap(self, from_ino: int, successor: ChainFile, *, read_to: int | None) -> None:
        """Add to this read's lost bytes what the writer deleted between the file we leave and `successor`."""
        self._lost += chain.lost_between(self.path, from_ino, successor, read_to=read_to)

    def _was_truncated(self, size: int) -> bool:
        if size < self._read_pos:
            return True
        # Truncated and written again up to or past our offset before we looked: the first bytes differ.
        return bool(self._head) and os.pread(self._fd, len(self._head), 0) != self._head

    def _position_after_truncation(self) -> None:
        """Continue in the file's copy if logrotate left one (copytruncate), else read it again from 0."""
        position = self._fingerprinted()  # the file now holds other bytes: use the head read before
        if position.offset > 0:
            for entry in reversed(chain.list_chain(self.path)):
                if entry.identity != self._identity and self._open_at(
                    entry, position.offset, position.head_len, position.head_sha256
                ):
                    log.warning(
                        "source truncated in place; finishing its copy first",
                        extra={"copy": str(entry.path), "offset": position.offset},
                    )
                    return
        log.warning("source truncated in place; reading it again from the start", extra={"file": str(self.path)})
        self._read_pos = 0
        self._framer.reset(0)
        self._head = b""
