"""The generations of a file rotated by rename, as its writer saw them: what lets a reader count what it missed.

The webserver rotates its events file by rename (events.jsonl -> .1 -> .2 ...). A tailer that was stopped
while more generations came and went than are kept cannot see, from the files left, that one existed. So the
writer keeps a small ledger beside the file, `<name>.generations.json`, rewritten atomically at each rotation:
every file it wrote, in order, by inode, with its final size once rotated. A reader that finishes the file
with inode A and goes on with inode C looks both up: the generations between them are what it skipped, and
their sizes are the bytes lost.

The other half of the contract is the reader's own checkpoint (the sidecar's tail.json), which the writer
reads before it deletes a rotated file: `reader_position` gives the inode and offset the reader has reached.

Inodes may be reused once a file is deleted and closed; the reader holds its current file open, so that
one cannot be, and the walk goes back from the newest entry. The ledger keeps the last MAX_GENERATIONS.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from podkit.files import write_atomic
from podkit.volume import TAIL_VERSION, check_version

log = logging.getLogger("podkit.rotation")

MAX_GENERATIONS: Final = 256
SUFFIX: Final = ".generations.json"


def ledger_path(path: Path) -> Path:
    """Where the ledger of `path` lives (its name does not end in a digit: no tailer takes it for a generation)."""
    return path.with_name(path.name + SUFFIX)


@dataclass(frozen=True)
class Generation:
    """One file the writer wrote to; `linked`: it directly follows the entry before it (rotated by the writer)."""

    number: int
    ino: int
    size: int | None  # final size once rotated; None while it is the current file
    linked: bool

    def to_json(self) -> dict[str, object]:
        return {"n": self.number, "ino": self.ino, "size": self.size, "linked": self.linked}


@dataclass(frozen=True)
class Gap:
    """What lies between two files of the ledger: whole generations skipped, and the size of the first file."""

    generations: int
    skipped_bytes: int
    first_size: int | None


def load(path: Path) -> list[Generation]:
    """The ledger of `path`, oldest first; empty when there is none or it cannot be read (logged)."""
    try:
        raw = json.loads(ledger_path(path).read_bytes())
        return [
            Generation(
                int(item["n"]),
                int(item["ino"]),
                None if item["size"] is None else int(item["size"]),
                bool(item["linked"]),
            )
            for item in raw["generations"]
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("rotation ledger unreadable", extra={"path": str(ledger_path(path)), "error": str(exc)})
        return []


def save(path: Path, generations: list[Generation]) -> None:
    """Rewrite the ledger atomically (not fsynced: losing it in a crash only loses the count of a gap)."""
    kept = generations[-MAX_GENERATIONS:]
    data = json.dumps({"generations": [g.to_json() for g in kept]}, separators=(",", ":")).encode() + b"\n"
    write_atomic(ledger_path(path), data, durable=False)


def gap(generations: list[Generation], from_ino: int, to_ino: int) -> Gap | None:
    """What lies between the file `from_ino` and the later file `to_ino`, or None when the ledger cannot tell
    (either is not in it, or the chain between them has a link the writer did not make)."""
    later = [i for i, g in enumerate(generations) if g.ino == to_ino]
    if not later:
        return None
    index = later[-1]
    skipped = skipped_bytes = 0
    while generations[index].linked and index > 0:
        index -= 1
        entry = generations[index]
        if entry.ino == from_ino:
            return Gap(skipped, skipped_bytes, entry.size)
        skipped += 1
        skipped_bytes += entry.size or 0
    return None


def reader_position(checkpoint: Path) -> tuple[int, int] | None:
    """(inode, offset) of the file the reader is on, from its checkpoint's `source` (the sidecar's tail.json,
    podkit.volume.TAIL_VERSION: {"version": 1, "source": {"ino": N, "offset": N, ...} | null, ...}); None if it
    has none (yet), or it cannot be read or is of a version this build does not know (then the writer holds
    rotated files up to its cap, as without a checkpoint)."""
    try:
        value = json.loads(checkpoint.read_bytes())
        check_version(value, TAIL_VERSION, "tail checkpoint")
        source = value.get("source")
        return (int(source["ino"]), int(source["offset"])) if isinstance(source, dict) else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("reader checkpoint unreadable", extra={"path": str(checkpoint), "error": str(exc)})
        return None
