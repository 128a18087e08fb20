"""Where the adapter's output lives: XML document names, the checkpoint, and where to resume after a crash.

A document is named by the segment and byte range it covers (`events-00000001.jsonl.000000000000-
000000004096.xml`), so its name is deterministic and sorts in the order documents are written. It is written
to a temporary name and renamed (`podkit.files.write_atomic`), and only then is the checkpoint advanced. A
crash between the two leaves a document the checkpoint does not know: on restart the adapter takes the
furthest of the checkpoint and the newest document, so that range is neither lost nor written twice.
Retention (`adapter.retention`) deletes older documents but never the newest, so that still holds; and with
no document left at all, the checkpoint alone (written after every document) says where to resume.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from podkit.files import read_json, write_atomic, write_json_atomic

from adapter.reader import segment_number

log = logging.getLogger("adapter.documents")

DOCUMENT_NAME: Final = re.compile(r"(events-\d{8}\.jsonl)\.(\d{12})-(\d{12})\.xml")


@dataclass(frozen=True, order=True)
class Position:
    """A point in the event stream: `offset` bytes into `segment` have been converted."""

    number: int
    offset: int
    segment: str

    @classmethod
    def of(cls, segment: str, offset: int) -> Position:
        number = segment_number(segment)
        if number is None:
            raise ValueError(f"not a segment name: {segment!r}")
        return cls(number, offset, segment)


@dataclass(frozen=True)
class Layout:
    """The adapter's paths under SHARED_DIR (docs/design.md, "The shared volume")."""

    shared_dir: Path

    @property
    def events_dir(self) -> Path:
        return self.shared_dir / "events"

    @property
    def xml_dir(self) -> Path:
        return self.shared_dir / "xml"

    @property
    def state_dir(self) -> Path:
        return self.shared_dir / "state" / "adapter"

    @property
    def deadletter_dir(self) -> Path:
        return self.shared_dir / "deadletter"

    @property
    def checkpoint(self) -> Path:
        return self.state_dir / "xml.json"

    @property
    def deadletter(self) -> Path:
        return self.deadletter_dir / "adapter.jsonl"

    def create(self) -> None:
        for directory in (self.events_dir, self.xml_dir, self.state_dir, self.deadletter_dir):
            directory.mkdir(parents=True, exist_ok=True)


def document_name(segment: str, start: int, end: int) -> str:
    return f"{segment}.{start:012d}-{end:012d}.xml"


def parse_document_name(name: str) -> tuple[str, int, int] | None:
    """(segment, start, end) of a document name, or None for any other file."""
    match = DOCUMENT_NAME.fullmatch(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def write_document(layout: Layout, segment: str, start: int, end: int, xml: bytes) -> str:
    """Write one document atomically and durably; returns its name."""
    name = document_name(segment, start, end)
    write_atomic(layout.xml_dir / name, xml)
    return name


def read_checkpoint(layout: Layout) -> Position | None:
    """The checkpoint `{"segment": "events-NNNNNNNN.jsonl", "offset": N}`, or None if there is none."""
    try:
        value = read_json(layout.checkpoint)
        return None if value is None else Position.of(value["segment"], int(value["offset"]))
    except (TypeError, KeyError, ValueError):
        # Documents still tell how far conversion went; only a trailing dead-letter-only range is redone.
        log.error("ignoring a malformed checkpoint", extra={"path": str(layout.checkpoint)})
        return None


def write_checkpoint(layout: Layout, position: Position) -> None:
    """The format the sidecar reads for retention: keep it."""
    write_json_atomic(layout.checkpoint, {"segment": position.segment, "offset": position.offset})


def newest_document(layout: Layout) -> Position | None:
    """The end of the furthest document in xml/ (documents are written in stream order)."""
    newest: Position | None = None
    with os.scandir(layout.xml_dir) as entries:
        for entry in entries:
            parsed = parse_document_name(entry.name)
            if parsed is not None:
                position = Position.of(parsed[0], parsed[2])
                if newest is None or position > newest:
                    newest = position
    return newest


def append_dead_letters(layout: Layout, records: list[dict[str, Any]]) -> None:
    """Append records (a `ts` is added) to deadletter/adapter.jsonl in one write, durably."""
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    data = b"".join(json.dumps({"ts": now, **record}).encode() + b"\n" for record in records)
    fd = os.open(layout.deadletter, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporary_files(layout: Layout) -> None:
    """Drop the temporary files a crash may have left in xml/ (never renamed, so never seen by readers)."""
    for path in layout.xml_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def resume_position(layout: Layout) -> Position | None:
    """Where conversion resumes: the furthest of the checkpoint and the newest document."""
    remove_temporary_files(layout)
    candidates = [p for p in (read_checkpoint(layout), newest_document(layout)) if p is not None]
    return max(candidates) if candidates else None
