"""Line framing on bytes alone, as Vector's file source does it apart from files (`read_until_with_max_size`):
bytes in, complete lines and what is left out, no file I/O, so every edge is testable on bytes.

A partial last line is held back until its newline arrives; a line longer than `max_line_bytes` is not held in
memory but skipped to its newline and reported (its first `keep_head` bytes only) as `Rejected`. Offsets are
the stream's: the framer counts from where it was `reset` (a file offset, for the tailer).
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass
class _LongLine:
    offset: int
    head: bytes
    length: int


class LineFramer:
    """Cuts a byte stream into complete lines; `offset`: every byte before it was handed out."""

    def __init__(self, *, max_line_bytes: int, keep_head: int, offset: int = 0) -> None:
        self.max_line_bytes = max_line_bytes
        self.keep_head = keep_head
        self.offset = offset
        self._partial = b""  # bytes after `offset` waiting for their newline
        self._long: _LongLine | None = None

    def reset(self, offset: int) -> None:
        """Start again at `offset` of another stream (or the same one read again), holding nothing."""
        self.offset = offset
        self._partial, self._long = b"", None

    @property
    def held(self) -> int:
        """Bytes after `offset` not handed out yet: a partial line, or the part of a long line seen so far."""
        return self._long.length if self._long is not None else len(self._partial)

    def feed(self, data: bytes) -> list[Lines | Rejected]:
        """What `data` completes, in stream order: the end of a long line (`Rejected`), then one `Lines` with
        every complete line; the rest is held for the next call."""
        parts: list[Lines | Rejected] = []
        if self._long is not None:
            newline = data.find(b"\n")
            if newline < 0:
                self._long.length += len(data)
                return parts
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
        return parts

    def leftover(self) -> Rejected | None:
        """The line the stream ends with, if it has no newline: once the stream is finished, it never will."""
        if self._long is not None:
            return Rejected("incomplete_line", self._long.offset, self._long.length, self._long.head)
        if self._partial:
            return Rejected("incomplete_line", self.offset, len(self._partial), self._partial[: self.keep_head])
        return None
