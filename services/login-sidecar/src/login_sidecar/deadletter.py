"""SHARED_DIR/deadletter/login-sidecar.jsonl: what the sidecar could not pass on, one JSON record a line.

Source lines that are not JSON objects (or too long, or cut off by a rotation) are kept as their first
RAW_MAX_BYTES with their place in the source; batches the sink refused (a 4xx) are kept whole, one record
per event, so they can be replayed. Records are at least once: a crash before the checkpoint repeats them.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from login_sidecar.appendlog import AppendLog

RAW_MAX_BYTES: Final = 4096


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def source_record(
    reason: str, *, path: Path, file: tuple[int, int], offset: int, length: int, raw: bytes
) -> dict[str, Any]:
    """A source line that was not written to events/ (`raw` holds at least its first RAW_MAX_BYTES)."""
    return {
        "ts": _now(),
        "reason": reason,
        "source": {"path": str(path), "dev": file[0], "ino": file[1], "offset": offset},
        "length": length,
        "raw": raw[:RAW_MAX_BYTES].decode("utf-8", "replace"),
        "raw_truncated": length > RAW_MAX_BYTES,
    }


def rejected_record(*, status: int | None, segment: str, offset: int, line: bytes) -> dict[str, Any]:
    """One event of a batch the sink refused; `raw` is the whole line (valid UTF-8 JSON) without newline."""
    return {
        "ts": _now(),
        "reason": "sink_rejected",
        "status": status,
        "segment": segment,
        "offset": offset,
        "length": len(line),
        "raw": line.decode("utf-8", "replace"),
        "raw_truncated": False,
    }


class DeadLetter:
    """Appends records durably; safe to share between the tail thread and the shipping task."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: AppendLog | None = None
        self._lock = threading.Lock()

    def write(self, records: list[dict[str, Any]]) -> None:
        """Raises OSError (nothing written) when the shared volume is full or read-only."""
        if not records:
            return
        data = b"".join(json.dumps(record, separators=(",", ":")).encode() + b"\n" for record in records)
        with self._lock:
            self._current().append(data)

    def _current(self) -> AppendLog:
        """The open file, reopened if someone moved or removed it (an operator emptying the dead letters)."""
        try:
            st = os.stat(self.path)
            at_path = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            at_path = None
        if self._log is None or self._log.identity != at_path:
            if self._log is not None:
                self._log.close()
                self._log = None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._log = AppendLog(self.path)
        return self._log

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
