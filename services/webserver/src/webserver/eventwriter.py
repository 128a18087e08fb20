"""Appending encoded login events (webserver.events) to the events file, which it rotates.

The writer appends each event as one `write()` of the JSON line plus `\\n` to a file opened with O_APPEND,
so a reader never sees two events interleaved. It rotates the file by rename when it would grow past
`max_bytes` (events.jsonl -> events.jsonl.1 -> .2 ...), reopens it when something else renamed or removed
it, and never leaves a partial line in front of a new event: after a crash or a short write it first
ends the broken line with `\\n` (the sidecar dead-letters that line; the next one is whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncFileIO
from podkit import rotation

log = logging.getLogger("webserver.events")


class EventWriteError(Exception):
    """The event could not be appended; the caller must refuse what the event would have recorded."""


async def _ends_in_partial_line(path: Path) -> bool:
    """True when a regular file's last byte is not `\n` (a crash or a short write cut a line)."""
    try:
        st = await aiofiles.os.stat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return False
    async with aiofiles.open(path, "rb") as file:
        await file.seek(st.st_size - 1)
        last: bytes = await file.read(1)
    return last != b"\n"


def _open_append(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_APPEND | os.O_CLOEXEC, 0o640)


class EventWriter:
    """Appends encoded events to `path`; every method is safe to call from concurrent tasks.

    With `reader_checkpoint` (the sidecar's tail.json), a rotation keeps the rotated files the sidecar has not
    finished beyond `keep`, up to `keep_max`: only past that hard cap is an unread file deleted (logged as an
    error; the sidecar counts the bytes through the rotation ledger, podkit.rotation).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        keep: int,
        keep_max: int | None = None,
        reader_checkpoint: Path | None = None,
        on_rotate: Callable[[], None] | None = None,
        on_unread_deleted: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self._on_rotate = on_rotate
        self._on_unread_deleted = on_unread_deleted
        self.max_bytes = max_bytes
        self.keep = keep
        self.keep_max = max(keep, keep_max or keep)
        self.reader_checkpoint = reader_checkpoint
        self._file: AsyncFileIO | None = None
        self._size = 0  # the file's size after our last write: another size means another writer appended
        self._regular = False
        self._generations: list[rotation.Generation] | None = None
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    async def open(self) -> None:
        """Open at start-up; a failure is logged and retried on the next write (readiness says so)."""
        async with self._lock:
            try:
                await self._open()
            except OSError as exc:
                self.last_error = f"cannot open: {exc.strerror}"
                log.error("cannot open the events file", extra={"path": str(self.path), "error": str(exc)})

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def write(self, line: bytes) -> None:
        """Append one encoded event, or raise EventWriteError (nothing, or a partial line, was written)."""
        async with self._lock:
            try:
                await self._prepare(len(line))
                assert self._file is not None
                written = await self._file.write(line)
                self._size += written
                if written != len(line):
                    await self._close()  # the next open ends the partial line first
                    raise OSError(0, f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                self.last_error = exc.strerror or str(exc)
                raise EventWriteError(self.last_error) from exc
            self.last_error = None

    def writable(self) -> tuple[bool, str]:
        """Whether an append can be expected to work, judged without writing (for /readyz)."""
        if self._file is None:
            return False, f"events file not open: {self.last_error or 'not started'}"
        if not os.access(self.path, os.W_OK):
            return False, "events file not writable"
        try:
            fs = os.fstatvfs(self._file.fileno())
        except OSError as exc:
            return False, f"events file system: {exc.strerror}"
        if fs.f_flag & os.ST_RDONLY:
            return False, "events file system is read-only"
        if self._regular and fs.f_bavail == 0:
            return False, "events file system is full"
        # A failed write alone does not make the pod unready: with no traffic, nothing would clear it.
        return True, "ok" if self.last_error is None else f"ok, but the last event write failed: {self.last_error}"

    async def _open(self, *, rotated_from: tuple[int, int] | None = None) -> None:
        await self._close()
        await self._end_partial_line()
        self._file = await aiofiles.open(self.path, "ab", buffering=0, opener=_open_append)
        st = os.fstat(self._file.fileno())
        self._size = st.st_size
        self._regular = stat.S_ISREG(st.st_mode)
        if self._regular:
            await asyncio.to_thread(self._record_generation, st.st_ino, rotated_from)

    async def _end_partial_line(self) -> bool:
        """End a line someone left without its newline (a crash, a short write, another writer); True if one was."""
        if not await _ends_in_partial_line(self.path):
            return False
        log.warning("events file ends in a partial line, ending it", extra={"path": str(self.path)})
        async with aiofiles.open(self.path, "ab", buffering=0, opener=_open_append) as repair:
            await repair.write(b"\n")
        return True

    def _record_generation(self, ino: int, rotated_from: tuple[int, int] | None) -> None:
        """Keep the rotation ledger: the file now written, linked to the one rotated just before it."""
        if self._generations is None:
            self._generations = rotation.load(self.path)
        generations = self._generations
        if generations and generations[-1].ino == ino:
            return
        linked = False
        if generations and rotated_from is not None and generations[-1].ino == rotated_from[0]:
            last = generations[-1]
            generations[-1] = rotation.Generation(last.number, last.ino, rotated_from[1], last.linked)
            linked = True
        number = generations[-1].number + 1 if generations else 1
        generations.append(rotation.Generation(number, ino, None, linked))
        del generations[: -rotation.MAX_GENERATIONS]
        try:
            rotation.save(self.path, generations)
        except OSError as exc:
            log.warning("cannot write the rotation ledger", extra={"path": str(self.path), "error": str(exc)})

    async def _close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                await file.close()
            except OSError as exc:  # pragma: no cover - close of an append-only fd
                log.warning("closing the events file failed", extra={"error": str(exc)})

    async def _prepare(self, incoming: int) -> None:
        """Make sure the open file is the one at the path and has room for `incoming` bytes."""
        if self._file is None or await self._replaced():
            await self._open()
        if self._regular and self._size > 0 and self._size + incoming > self.max_bytes:
            await self._rotate()

    async def _replaced(self) -> bool:
        assert self._file is not None
        try:
            at_path = await aiofiles.os.stat(self.path)
        except FileNotFoundError:
            return True
        ours = os.fstat(self._file.fileno())
        if (at_path.st_dev, at_path.st_ino) != (ours.st_dev, ours.st_ino):
            return True
        if ours.st_size != self._size:
            # Someone else appended: if they left a fragment without its newline, end it before our line.
            if self._regular and await self._end_partial_line():
                ours = os.fstat(self._file.fileno())
            self._size = ours.st_size
        return False

    async def _rotate(self) -> None:
        assert self._file is not None
        rotated = os.fstat(self._file.fileno())
        await self._close()
        await asyncio.to_thread(self._shift_generations, rotated.st_ino)
        await aiofiles.os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        if self._on_rotate is not None:
            self._on_rotate()
        log.info("events file rotated", extra={"path": str(self.path), "keep": self.keep})
        await self._open(rotated_from=(rotated.st_ino, rotated.st_size))

    def _shift_generations(self, current_ino: int) -> None:
        """Rename path.N -> path.N+1 (path.1 is the newest), deleting those past `keep` the reader has finished
        and, whatever the reader says, those past the hard cap `keep_max`."""
        prefix = self.path.name + "."
        indices = sorted(
            (
                int(suffix)
                for name in os.listdir(self.path.parent)
                if name.startswith(prefix) and (suffix := name[len(prefix) :]).isascii() and suffix.isdigit()
            ),
            reverse=True,
        )
        files = {index: self.path.with_name(f"{prefix}{index}") for index in indices}
        reading, offset = self._reader_index(files, current_ino)
        for index in indices:  # oldest first, so no rename lands on a file still to be moved
            target = index + 1
            finished = index > reading or (index == reading and offset >= files[index].stat().st_size)
            if target <= self.keep or (not finished and target <= self.keep_max):
                os.replace(files[index], self.path.with_name(f"{prefix}{target}"))
                continue
            if not finished:
                size = files[index].stat().st_size
                lost = size - offset if index == reading else size
                log.error(
                    "deleting an events file the sidecar's checkpoint has not passed: EVENTS_FILE_KEEP_MAX "
                    "reached; its unread events are lost unless the sidecar holds it open",
                    extra={"file": str(files[index]), "unread_bytes": lost, "keep_max": self.keep_max},
                )
                if self._on_unread_deleted is not None:
                    self._on_unread_deleted(lost)
            files[index].unlink(missing_ok=True)

    def _reader_index(self, files: dict[int, Path], current_ino: int) -> tuple[int, int]:
        """(index, offset) of the file the reader is in (0: the current file): every rotated file with a higher
        index is finished. Without a reader checkpoint, every rotated file counts as finished."""
        if self.reader_checkpoint is None:
            return 0, 0
        unknown = max(files, default=0) + 1  # no checkpoint yet, or its file is gone: none is finished
        position = rotation.reader_position(self.reader_checkpoint)
        if position is None:
            return unknown, 0
        ino, offset = position
        if ino == current_ino:
            return 0, offset
        for index, path in files.items():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_ino == ino:
                    return index, offset
        return unknown, 0
