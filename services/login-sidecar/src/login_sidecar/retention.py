"""Deletes the closed segments that every consumer is done with, so events/ does not fill the volume.

The consumers are the adapter (state/adapter/xml.json) and, when shipping is on, our shipper
(state/login-sidecar/ship.json). A consumer without a checkpoint holds everything back; the segment being
written (the highest number) is never deleted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from podkit.files import fsync_dir
from podkit.volume import CheckpointError, SegmentOffset, list_segments, load_offset, segment_name

log = logging.getLogger("login_sidecar.retention")


def _done_with(position: SegmentOffset, number: int, size: int) -> bool:
    return position.segment > number or (position.segment == number and position.offset >= size)


def delete_consumed(events_dir: Path, consumers: list[Path]) -> list[str]:
    """Delete the closed segments all `consumers` checkpoints are past; return their names, oldest first."""
    positions = []
    for checkpoint in consumers:
        try:
            position = load_offset(checkpoint)
        except CheckpointError as exc:
            log.warning("consumer checkpoint unreadable; keeping every segment", extra={"error": str(exc)})
            return []
        if position is None:
            return []
        positions.append(position)
    deleted: list[str] = []
    for number in list_segments(events_dir)[:-1]:
        path = events_dir / segment_name(number)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue
        if not all(_done_with(position, number, size) for position in positions):
            break  # consumers read in order: no later segment is done either
        path.unlink()
        deleted.append(path.name)
    if deleted:
        fsync_dir(events_dir)
        log.info("segments deleted", extra={"segments": deleted})
    return deleted
