"""Writing the segments in SHARED_DIR/events/ (their names and listing: podkit.volume, the contract).

The highest number is the one being written; a new one starts when the next line would take the current
one past SEGMENT_MAX_BYTES, so readers (the adapter, our shipper) see a lower-numbered segment as closed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from podkit.files import fsync_dir
from podkit.volume import SegmentOffset, list_segments, segment_name

from login_sidecar.appendlog import AppendLog

log = logging.getLogger("login_sidecar.segments")

_SCAN_CHUNK: Final = 1 << 20


class SegmentWriter:
    """Appends batches of complete lines to the current segment, rolling to the next one when it is full."""

    def __init__(self, events_dir: Path, max_bytes: int) -> None:
        self.events_dir = events_dir
        self.max_bytes = max_bytes
        self._file: AppendLog | None = None
        self._number = 0

    def open(self, first: int = 1) -> None:
        """Continue the highest segment, or start one numbered `first` (past the checkpointed one, if events/
        was emptied under us: readers' checkpoints may still name the old numbers, and they never go back)."""
        self.events_dir.mkdir(parents=True, exist_ok=True)
        numbers = list_segments(self.events_dir)
        if numbers:
            self._open(numbers[-1])
        else:
            self._start(first)

    @property
    def position(self) -> SegmentOffset:
        """Where the next line goes: everything before it is written and fsynced."""
        assert self._file is not None, "open() first"
        return SegmentOffset(self._number, self._file.size)

    def write(self, data: bytes, start: int) -> int:
        """Append the whole lines of `data[start:]` that fit the current segment; return where they ended.

        Rolls first when not even the next line fits; a line longer than a segment gets one to itself.
        Call again with the returned index until it reaches len(data). Raises OSError (nothing of this
        call written) on a full or failing volume.
        """
        assert self._file is not None, "open() first"
        if start >= len(data):
            return start
        end = self._fitting_end(data, start)
        if end <= start and self._file.size > 0:
            self._start(self._number + 1)
            end = self._fitting_end(data, start)
        if end <= start:  # a single line longer than a whole segment
            end = data.index(b"\n", start) + 1
        self._file.append(memoryview(data)[start:end])
        return end

    def _fitting_end(self, data: bytes, start: int) -> int:
        assert self._file is not None
        room = self.max_bytes - self._file.size
        if room >= len(data) - start:
            return len(data)
        return data.rfind(b"\n", start, start + max(room, 0)) + 1 if room > 0 else 0

    def recover(self, checkpoint: SegmentOffset | None) -> list[bytes]:
        """After a crash: cut a torn last line, and return the lines written after `checkpoint`.

        Those lines were written but not checkpointed; the caller skips them when it reads the source again
        (docs/design.md, exactly once into events/). Lines are returned without their newline.
        """
        assert self._file is not None, "open() first"
        self._cut_torn_line()
        if checkpoint is None:
            return []
        lines: list[bytes] = []
        for number in list_segments(self.events_dir):
            if number < checkpoint.segment:
                continue
            start = checkpoint.offset if number == checkpoint.segment else 0
            data = _read_from(self.events_dir / segment_name(number), start)
            if data is None:
                log.error(
                    "checkpointed segment is shorter than its checkpoint",
                    extra={"segment": segment_name(number), "checkpoint_size": start},
                )
                continue
            lines.extend(data.split(b"\n")[:-1])
        if lines:
            self._file.sync()
        return lines

    def _cut_torn_line(self) -> None:
        assert self._file is not None
        size = self._file.size
        end = size
        path = self.events_dir / segment_name(self._number)
        with path.open("rb") as file:
            while end > 0:
                begin = max(0, end - _SCAN_CHUNK)
                file.seek(begin)
                chunk = file.read(end - begin)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    end = begin + newline + 1
                    break
                end = begin
        if end < size:
            log.warning(
                "cutting a torn line off the current segment",
                extra={"segment": path.name, "from": end, "bytes": size - end},
            )
            self._file.truncate(end)

    def _open(self, number: int) -> None:
        self.close()
        self._file = AppendLog(self.events_dir / segment_name(number))
        self._number = number

    def _start(self, number: int) -> None:
        self._open(number)
        fsync_dir(self.events_dir)
        log.info("segment started", extra={"segment": segment_name(number)})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_from(path: Path, start: int) -> bytes | None:
    """The bytes of `path` from `start` on, or None when the file is shorter than `start` or gone."""
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size < start:
                return None
            file.seek(start)
            return file.read()
    except FileNotFoundError:
        return None
