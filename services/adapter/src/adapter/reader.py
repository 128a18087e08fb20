"""Read whole lines from a segment in SHARED_DIR/events/, in order (names and listing: podkit.volume).

The sidecar appends complete lines to the highest-numbered segment only; a lower-numbered one is closed.
A batch never splits a line, and its byte range [start, end) names the XML document made from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from podkit.volume import segment_name

READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class Batch:
    segment: int  # its number
    start: int
    end: int
    lines: list[bytes]  # without their newline


def read_batch(events_dir: Path, segment: int, start: int, max_lines: int, *, closed: bool) -> Batch:
    """Up to `max_lines` complete lines of segment number `segment` from byte `start`.

    A `closed` segment gets no more data (a higher one existed before this read began), so bytes after its
    last newline are taken as a final line rather than waited for: a torn tail cannot stall the adapter.
    Raises FileNotFoundError if the segment is gone.
    """
    lines: list[bytes] = []
    end = start
    pending = bytearray()
    with open(events_dir / segment_name(segment), "rb") as file:
        file.seek(start)
        while len(lines) < max_lines:
            chunk = file.read(READ_CHUNK)
            if not chunk:
                if closed and pending:
                    lines.append(bytes(pending))
                    end += len(pending)
                break
            pending += chunk
            if b"\n" not in chunk:
                continue
            parts = pending.split(b"\n")
            complete = parts[:-1][: max_lines - len(lines)]
            lines.extend(bytes(part) for part in complete)
            used = sum(len(part) for part in complete) + len(complete)
            end += used
            del pending[:used]
    return Batch(segment, start, end, lines)
