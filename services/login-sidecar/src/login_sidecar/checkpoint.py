"""The tail checkpoint, state/login-sidecar/tail.json: JSON written atomically (podkit.files), advanced only
after what it covers is durable. The offset checkpoints (ship.json, the adapter's xml.json) are the volume
contract's: podkit.volume.SegmentOffset, load_offset and save_offset.

tail.json  {"version": 1,
            "source": {"path", "dev", "ino", "offset", "head_len", "head_sha256"} | null,
            "segment": "events-NNNNNNNN.jsonl", "segment_size": N}

Versioned as podkit.volume's offset checkpoint is: a file without "version" is the format written before
versions existed (the same keys) and is read as it is, so a restart after an upgrade resumes exactly where it
stopped, and the next save writes version 1; a higher version is refused (CheckpointError), not guessed at.

The webserver reads `source.ino` and `source.offset` (podkit.rotation.reader_position) before it deletes a
rotated events file: those two keys are a contract with it, and stay where they are in every version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podkit.files import write_json_atomic
from podkit.volume import TAIL_VERSION, CheckpointError, SegmentOffset, check_version, load_json_object

from login_sidecar.fingerprint import SourcePosition


@dataclass(frozen=True)
class TailCheckpoint:
    source: SourcePosition | None  # None until the source file first appeared
    written: SegmentOffset  # the segment and its size when `source` was reached


def load_tail(path: Path) -> TailCheckpoint | None:
    """Raises CheckpointError when tail.json exists but cannot be read (the sidecar must not guess)."""
    value = load_json_object(path)
    if value is None:
        return None
    try:
        check_version(value, TAIL_VERSION, "tail checkpoint")
        written = SegmentOffset.from_json({"segment": value.get("segment"), "offset": value.get("segment_size")})
        source = value.get("source")
        position = None if source is None else SourcePosition.from_json(source)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return TailCheckpoint(position, written)


def save_tail(path: Path, checkpoint: TailCheckpoint, source_path: Path) -> None:
    source = None if checkpoint.source is None else {"path": str(source_path), **checkpoint.source.to_json()}
    write_json_atomic(
        path,
        {
            "version": TAIL_VERSION,
            "source": source,
            "segment": checkpoint.written.name,
            "segment_size": checkpoint.written.offset,
        },
    )
