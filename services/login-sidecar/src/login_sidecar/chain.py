"""The source's rotation chain, as Fluent Bit's tail and Vector's file server follow renames: the files it is
rotated to (path.N ... path.2, path.1, path: oldest first), which one comes after ours, and what the writer
deleted in between (its rotation ledger, podkit.rotation: issue 9's gap detection).

Only listing and stats here: opening and reading the files is the tailer's.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from podkit import rotation

from login_sidecar.fingerprint import FileId

log = logging.getLogger("login_sidecar.tailer")  # the tailer's log lines, as before the split


@dataclass(frozen=True)
class ChainFile:
    """One file of the chain as it was listed: where, which file, how big."""

    path: Path
    identity: FileId
    size: int


def concerns(source: Path, path: str) -> bool:
    """Whether a change at `path` may matter to a tailer of `source`: the source or one of its rotated names."""
    return os.path.basename(path).startswith(source.name)


def list_chain(source: Path) -> list[ChainFile]:
    """The source's files, oldest first: path.N, ..., path.2, path.1, path (regular files that exist)."""
    prefix = source.name + "."
    try:
        names = os.listdir(source.parent)
    except FileNotFoundError:
        names = []
    generations = sorted(
        (int(suffix), name)
        for name in names
        if name.startswith(prefix) and (suffix := name[len(prefix) :]).isascii() and suffix.isdigit()
    )
    paths = [source.with_name(name) for _, name in reversed(generations)] + [source]
    entries = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            entries.append(ChainFile(path, (st.st_dev, st.st_ino), st.st_size))
    return entries


@dataclass(frozen=True)
class Successor:
    """What follows the file a tailer is on: `ready`, the file to move to once ours is read to its end (None
    while ours is still the source, or the next one is not ready), and `later_bytes`, the size of every
    later file (the tailer's lag beyond its own file)."""

    ready: ChainFile | None
    later_bytes: int


def successor(source: Path, identity: FileId) -> Successor:
    """The file after `identity` in the chain of `source`, when `identity` is rotated and the next one is ready.

    The next file is ready when it has data or is itself rotated: a writer that rotates by rename writes
    its last line to the old file before the first to the new one, so seeing the new one non-empty
    before reading the old one to its end means nothing more will be added to the old one.
    """
    try:
        st = os.stat(source)
        at_path: FileId | None = (st.st_dev, st.st_ino)
    except FileNotFoundError:
        at_path = None
    if at_path == identity:
        return Successor(None, 0)
    chain = list_chain(source)
    identities = [entry.identity for entry in chain]
    # Ours rotated out of the chain (deleted): every file left is newer.
    later = chain[identities.index(identity) + 1 :] if identity in identities else chain
    later_bytes = sum(entry.size for entry in later)
    if not later:
        return Successor(None, later_bytes)
    first = later[0]
    return Successor(first if first.size > 0 or first.path != source else None, later_bytes)


def lost_between(source: Path, from_ino: int, next_file: ChainFile, *, read_to: int | None) -> int:
    """The bytes the writer deleted between the file we leave (`from_ino`) and `next_file`: logged, and
    returned for the caller to count.

    The writer's rotation ledger (podkit.rotation) says which generations lay between them; `read_to` is
    how far we had read the file we leave when it is gone (a restart), None when we read it to its end.
    """
    gap = rotation.gap(rotation.load(source), from_ino, next_file.identity[1])
    if gap is None:
        if read_to is not None:
            log.error(
                "the checkpointed source file is gone and the rotation ledger cannot tell what was lost",
                extra={"next": str(next_file.path)},
            )
        return 0
    lost = gap.skipped_bytes
    if read_to is not None and gap.first_size is not None:
        lost += max(0, gap.first_size - read_to)
    if lost or gap.generations:
        log.error(
            "source files were deleted before they were read: events lost",
            extra={"lost_bytes": lost, "skipped_generations": gap.generations, "next": str(next_file.path)},
        )
    return lost
