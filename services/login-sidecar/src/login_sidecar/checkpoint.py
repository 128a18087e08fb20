"""The checkpoints in SHARED_DIR/state/: JSON written atomically (podkit.files), advanced only after what they
cover is durable.

tail.json  {"source": {"path", "dev", "ino", "offset", "head_len", "head_sha256"} | null,
            "segment": "events-NNNNNNNN.jsonl", "segment_size": N}
ship.json and the adapter's xml.json  {"segment": "events-NNNNNNNN.jsonl", "offset": N}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from podkit.files import read_json, write_json_atomic

from login_sidecar.segments import SegmentOffset
from login_sidecar.tailer import SourcePosition


class CheckpointError(Exception):
    """A checkpoint file exists but does not hold what it should (an operator has to look at it)."""


@dataclass(frozen=True)
class TailCheckpoint:
    source: SourcePosition | None  # None until the source file first appeared
    written: SegmentOffset  # the segment and its size when `source` was reached


def load_tail(path: Path) -> TailCheckpoint | None:
    value = _load(path)
    if value is None:
        return None
    try:
        written = SegmentOffset.from_json({"segment": value.get("segment"), "offset": value.get("segment_size")})
        source = value.get("source")
        position = None if source is None else SourcePosition.from_json(source)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return TailCheckpoint(position, written)


def save_tail(path: Path, checkpoint: TailCheckpoint, source_path: Path) -> None:
    source = None if checkpoint.source is None else {"path": str(source_path), **checkpoint.source.to_json()}
    write_json_atomic(
        path, {"source": source, "segment": checkpoint.written.name, "segment_size": checkpoint.written.offset}
    )


def load_position(path: Path) -> SegmentOffset | None:
    """A {"segment", "offset"} checkpoint (ours for shipping, or the adapter's), or None if there is none."""
    value = _load(path)
    if value is None:
        return None
    try:
        return SegmentOffset.from_json(value)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def save_position(path: Path, position: SegmentOffset) -> None:
    write_json_atomic(path, position.to_json())


def _load(path: Path) -> dict[str, object] | None:
    try:
        value = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not JSON: {exc}") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return value
