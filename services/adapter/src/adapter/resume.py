"""Where conversion resumes after a restart: the furthest of the checkpoint and the newest document.

The checkpoint, state/adapter/xml.json, is the volume contract's offset checkpoint (podkit.volume): the
sidecar reads it too, to delete the segments the adapter is done with. A document is written (and renamed)
before the checkpoint is advanced, so a crash between the two leaves a document the checkpoint does not
know: the adapter then takes the end of the newest document, and that range is neither lost nor written
twice. Retention (`adapter.retention`) deletes older documents but never the newest, so that still holds;
with no document left at all, the checkpoint alone (written after every batch) says where to resume.
Deleting state/ therefore does not make the adapter start over: the newest document still says how far it
got (only a trailing range that went to the dead letters alone is converted again).
"""

from __future__ import annotations

import logging
import os

from podkit.volume import CheckpointError, SegmentOffset, Volume, load_offset, save_offset

from adapter.documents import parse_document_name, remove_temporary_files

log = logging.getLogger("adapter.resume")


def read_checkpoint(volume: Volume) -> SegmentOffset | None:
    """The conversion checkpoint, or None if there is none or it cannot be read (the documents still tell)."""
    try:
        return load_offset(volume.conversion_checkpoint)
    except CheckpointError as exc:
        log.error(
            "ignoring a malformed checkpoint", extra={"path": str(volume.conversion_checkpoint), "error": str(exc)}
        )
        return None


def write_checkpoint(volume: Volume, position: SegmentOffset) -> None:
    save_offset(volume.conversion_checkpoint, position)


def newest_document(volume: Volume) -> SegmentOffset | None:
    """The end of the furthest document in xml/ (documents are written in stream order)."""
    newest: SegmentOffset | None = None
    with os.scandir(volume.xml_dir) as entries:
        for entry in entries:
            parsed = parse_document_name(entry.name)
            if parsed is not None:
                position = SegmentOffset(parsed[0], parsed[2])
                if newest is None or position > newest:
                    newest = position
    return newest


def resume_position(volume: Volume) -> SegmentOffset | None:
    """Where conversion resumes: the furthest of the checkpoint and the newest document."""
    remove_temporary_files(volume)
    candidates = [p for p in (read_checkpoint(volume), newest_document(volume)) if p is not None]
    return max(candidates) if candidates else None
