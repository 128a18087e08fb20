"""Durable appends to one file at a known end: a failed append is cut back off, so the file only ever holds
what was fully written, and a retry writes the same bytes at the same place."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class AppendLog:
    """An open file that grows only by `append`, each one written with pwrite at `size`, then fdatasync'ed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        stat = os.fstat(self._fd)
        self.identity = (stat.st_dev, stat.st_ino)
        self.size = stat.st_size

    def append(self, data: bytes | memoryview) -> None:
        """Write `data` at the end and make it durable, or raise OSError with the file as it was before."""
        start = self.size
        view = memoryview(data)
        position = start
        try:
            while view:
                written = os.pwrite(self._fd, view, position)
                view = view[written:]
                position += written
            os.fdatasync(self._fd)
        except OSError:
            # ENOSPC after a partial write, EIO on sync: leave no torn bytes behind for readers.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self.size = position

    def truncate(self, size: int) -> None:
        """Cut the file to `size` (a torn last line left by a crash) and make that durable."""
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self.size = size

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
