"""The adapter's XML documents in xml/: their names, and writing one.

A document is named by the segment and byte range it covers (`events-00000001.jsonl.000000000000-
000000004096.xml`), so its name is deterministic and sorts in the order documents are written. It is written
to a temporary name and renamed (`podkit.files.write_atomic`), and only then is the checkpoint advanced
(`adapter.resume` says where to start again after a crash between the two).
"""

from __future__ import annotations

import re
from typing import Final

from podkit.files import write_atomic
from podkit.volume import SEGMENT_NAME, Volume, segment_name

DOCUMENT_NAME: Final = re.compile(SEGMENT_NAME.pattern + r"\.(\d{12})-(\d{12})\.xml")


def document_name(segment: int, start: int, end: int) -> str:
    return f"{segment_name(segment)}.{start:012d}-{end:012d}.xml"


def parse_document_name(name: str) -> tuple[int, int, int] | None:
    """(segment number, start, end) of a document name, or None for any other file."""
    match = DOCUMENT_NAME.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def write_document(volume: Volume, segment: int, start: int, end: int, xml: bytes) -> str:
    """Write one document atomically and durably; returns its name."""
    name = document_name(segment, start, end)
    write_atomic(volume.xml_dir / name, xml)
    return name


def remove_temporary_files(volume: Volume) -> None:
    """Drop the temporary files a crash may have left in xml/ (never renamed, so never seen by readers)."""
    for path in volume.xml_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)
