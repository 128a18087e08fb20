"""The records of SHARED_DIR/deadletter/login-sidecar.jsonl: what the sidecar could not pass on, one JSON
record a line, appended (with its `ts`) by podkit.volume.DeadLetter, the one dead-letter writer.

Source lines that are not JSON objects (or too long, or cut off by a rotation) are kept as their first
RAW_MAX_BYTES with their place in the source; batches the sink refused (a 4xx) are kept whole, one record
per event, so they can be replayed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

RAW_MAX_BYTES: Final = 4096


def source_record(
    reason: str, *, path: Path, file: tuple[int, int], offset: int, length: int, raw: bytes
) -> dict[str, Any]:
    """A source line that was not written to events/ (`raw` holds at least its first RAW_MAX_BYTES)."""
    return {
        "reason": reason,
        "source": {"path": str(path), "dev": file[0], "ino": file[1], "offset": offset},
        "length": length,
        "raw": raw[:RAW_MAX_BYTES].decode("utf-8", "replace"),
        "raw_truncated": length > RAW_MAX_BYTES,
    }


def rejected_record(*, status: int | None, segment: str, offset: int, line: bytes) -> dict[str, Any]:
    """One event of a batch the sink refused; `raw` is the whole line (valid UTF-8 JSON) without newline."""
    return {
        "reason": "sink_rejected",
        "status": status,
        "segment": segment,
        "offset": offset,
        "length": len(line),
        "raw": line.decode("utf-8", "replace"),
        "raw_truncated": False,
    }
