"""The shared volume's contract between the login sidecar (it writes events/) and the adapter (it reads them),
in one place, so that neither service can drift from the other (docs/design.md, "The shared volume"):

    SHARED_DIR/
      events/events-NNNNNNNN.jsonl   segments: JSON Lines, whole lines only; the highest number is the one
                                     being written, a lower one is closed (the sidecar writes, all read)
      xml/                           the adapter's XML documents (adapter.documents names them)
      state/<service>/<name>.json    checkpoints; a service writes only its own directory
      deadletter/<service>.jsonl     what a service could not pass on, one JSON record a line

The offset checkpoints (the sidecar's ship.json, the adapter's xml.json, which the sidecar's retention reads
to know what the adapter is done with) are all `SegmentOffset`, stored as
`{"version": 1, "segment": "events-NNNNNNNN.jsonl", "offset": N}`. A file without "version" is the format
written before versions existed (the same two keys) and is read as it is, so a restart after an upgrade
resumes where it stopped; a higher version is refused, not guessed at.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from podkit.files import fsync_dir, read_json, write_json_atomic

SIDECAR: Final = "login-sidecar"
ADAPTER: Final = "adapter"

SEGMENT_NAME: Final = re.compile(r"events-(\d{8})\.jsonl")
CHECKPOINT_VERSION: Final = 1


@dataclass(frozen=True)
class Volume:
    """The paths under SHARED_DIR (the same mount in every container of the pod)."""

    root: Path

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def xml_dir(self) -> Path:
        return self.root / "xml"

    @property
    def deadletter_dir(self) -> Path:
        return self.root / "deadletter"

    def state_dir(self, service: str) -> Path:
        return self.root / "state" / service

    def checkpoint(self, service: str, name: str) -> Path:
        """state/<service>/<name>.json."""
        return self.state_dir(service) / f"{name}.json"

    def deadletter(self, service: str) -> Path:
        """deadletter/<service>.jsonl."""
        return self.deadletter_dir / f"{service}.jsonl"

    def create(self, service: str) -> None:
        """The directories `service` writes or watches (each container of the pod creates what it needs)."""
        for directory in (self.events_dir, self.xml_dir, self.state_dir(service), self.deadletter_dir):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def conversion_checkpoint(self) -> Path:
        """The adapter's xml.json: how far events/ is converted (the sidecar keeps segments until it is past)."""
        return self.checkpoint(ADAPTER, "xml")

    @property
    def tail_checkpoint(self) -> Path:
        """The sidecar's tail.json: how far it has read the webserver's events file (the webserver reads it
        before deleting a rotated file: podkit.rotation.reader_position)."""
        return self.checkpoint(SIDECAR, "tail")


TAIL_VERSION: Final = 1  # the sidecar's tail.json (login_sidecar.checkpoint), read by the webserver too


# Segments ------------------------------------------------------------------------------------------------


def segment_name(number: int) -> str:
    return f"events-{number:08d}.jsonl"


def segment_number(name: str) -> int | None:
    """The number of a segment file name, or None for any other name."""
    match = SEGMENT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def list_segments(events_dir: Path) -> list[int]:
    """The numbers of the segments in `events_dir`, lowest first ([] when it does not exist)."""
    try:
        names = os.listdir(events_dir)
    except FileNotFoundError:
        return []
    return sorted(number for name in names if (number := segment_number(name)) is not None)


# Offset checkpoints --------------------------------------------------------------------------------------


class CheckpointError(Exception):
    """A checkpoint file exists but does not hold what it should (an operator has to look at it)."""


@dataclass(frozen=True, order=True)
class SegmentOffset:
    """A byte position in events/: `offset` bytes into segment number `segment`. Ordered as the stream is."""

    segment: int
    offset: int

    @property
    def name(self) -> str:
        return segment_name(self.segment)

    def to_json(self) -> dict[str, object]:
        return {"version": CHECKPOINT_VERSION, "segment": self.name, "offset": self.offset}

    @classmethod
    def from_json(cls, value: object) -> SegmentOffset:
        """Raises ValueError unless `value` is {"segment": "events-NNNNNNNN.jsonl", "offset": N} with a
        "version" we know (none, the format before versions, reads the same)."""
        if not isinstance(value, Mapping):
            raise ValueError("not a JSON object")
        check_version(value, CHECKPOINT_VERSION, "checkpoint")
        number = segment_number(str(value.get("segment")))
        offset = value.get("offset")
        if number is None or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"bad segment or offset in {dict(value)!r}")
        return cls(number, offset)


def check_version(value: Mapping[str, Any], newest: int, what: str) -> int:
    """A checkpoint's "version" (0 when it has none: the format written before versions, read the same way);
    ValueError for one newer than this build reads."""
    version = value.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= newest:
        raise ValueError(f"unknown {what} version {version!r} (this build reads up to {newest})")
    return version


def load_json_object(path: Path) -> dict[str, Any] | None:
    """A checkpoint file's JSON object, or None when there is no file; raises CheckpointError otherwise."""
    try:
        value = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not JSON: {exc}") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return value


def load_offset(path: Path) -> SegmentOffset | None:
    """An offset checkpoint, or None if there is none; raises CheckpointError when it cannot be read."""
    value = load_json_object(path)
    if value is None:
        return None
    try:
        return SegmentOffset.from_json(value)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def save_offset(path: Path, position: SegmentOffset) -> None:
    """Replace the checkpoint atomically and durably (podkit.files.write_json_atomic)."""
    write_json_atomic(path, position.to_json())


# Dead letters --------------------------------------------------------------------------------------------


def utc_now() -> str:
    """The `ts` of a dead-letter record: ISO 8601, UTC, microseconds, with a Z."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class DeadLetter:
    """Durable appends of JSON records to one dead-letter file; safe to share between threads.

    Each `write` opens the file (so an operator may move or empty it at any time), appends whole lines,
    fdatasyncs, and on failure cuts off what it wrote: the file only ever holds complete records. Records are
    at least once: a crash before the caller's checkpoint repeats them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append `records`, each stamped with a `ts` first; raises OSError (nothing written) when the
        volume is full or read-only."""
        now = utc_now()
        data = b"".join(json.dumps({"ts": now, **record}, separators=(",", ":")).encode() + b"\n" for record in records)
        if not data:
            return
        with self._lock:
            self._append(data)

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fdatasync(fd)
            except OSError:
                # ENOSPC after a partial write, EIO on sync: leave no torn record behind for readers.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
