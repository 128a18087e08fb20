"""Retention of xml/: keep the documents under XML_RETENTION_BYTES by deleting the oldest first, the way log
shippers bound their disk buffers (Fluent Bit's storage.total_limit_size, Vector's disk buffer max_size).

Without it the `shared` emptyDir (sizeLimit 1Gi) fills after about 2 million logins and the kubelet evicts
the pod. Two documents are never deleted, even over the cap:
- one the sink has not taken yet, when XML_SINK_URL is set (the backlog of an outage): the cap is then
  exceeded, with a warning, rather than losing what the sink has not got;
- the newest one: with the checkpoint, it tells a restart where to resume (`resume.resume_position`).

The total is kept in memory: one scan at start-up, then plus each document written, minus each deleted, so
that no document costs a directory scan. Only the WINDOW oldest names are held (a few hundred thousand small
documents fit under the cap, too many names for a 128 MiB container); when they are used up, xml/ is listed
again, at most once per WINDOW deletions, and the total is recounted then.

Every method runs in the converter's worker thread, one at a time (blocking file work).
"""

from __future__ import annotations

import collections
import heapq
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from podkit.volume import Volume

from adapter.documents import parse_document_name
from adapter.metrics import Metrics

log = logging.getLogger("adapter.retention")

WINDOW: Final = 10_000


@dataclass(frozen=True)
class Listing:
    total_bytes: int  # every document in xml/
    count: int
    oldest: list[str]  # the `keep` oldest names, oldest first
    newest: str  # "" when there is none


def list_documents(volume: Volume, keep: int) -> Listing:
    """One pass over xml/: total size, count, newest, and the `keep` oldest names (bounded memory)."""
    total = count = 0
    newest = ""

    def names() -> Iterator[str]:
        nonlocal total, count, newest
        with os.scandir(volume.xml_dir) as entries:
            for entry in entries:
                if parse_document_name(entry.name) is None:
                    continue
                try:
                    total += entry.stat().st_size
                except FileNotFoundError:
                    continue
                count += 1
                newest = max(newest, entry.name)
                yield entry.name

    oldest = heapq.nsmallest(keep, names())
    return Listing(total, count, oldest, newest)


class Retention:
    """`load` once, `added` after each document is written, `enforce` after each conversion step."""

    def __init__(self, volume: Volume, cap_bytes: int, metrics: Metrics, shipped: Callable[[], str] | None) -> None:
        self.volume = volume
        self.cap_bytes = cap_bytes  # 0: keep everything
        self.metrics = metrics
        self._shipped = shipped  # the last document the sink is done with; None when there is no sink
        self.total_bytes = 0
        self._newest = ""
        self._oldest: collections.deque[str] = collections.deque()
        self._complete = True  # `_oldest` holds every document: a new one is appended, not left to a listing
        self._blocked = False
        metrics.xml_bytes.set_function(lambda: float(self.total_bytes))

    def load(self) -> None:
        """Count what xml/ holds (at start-up, and whenever the window of oldest names is used up)."""
        listing = list_documents(self.volume, WINDOW)
        self.total_bytes = listing.total_bytes
        self._newest = listing.newest
        self._oldest = collections.deque(listing.oldest)
        self._complete = listing.count <= WINDOW

    def added(self, name: str, size: int) -> None:
        """A document was written (names only grow: documents are written in stream order)."""
        self.total_bytes += size
        self._newest = name
        if self._complete:
            if len(self._oldest) < WINDOW:
                self._oldest.append(name)
            else:
                self._complete = False

    def enforce(self) -> None:
        """Delete the oldest documents while over the cap. Never raises OSError: a failed deletion is logged
        and tried again after the next step (the step's own work is done by then and must not be lost)."""
        if not self.cap_bytes:
            return
        try:
            blocked_by = self._delete_oldest()
        except OSError as exc:
            log.error("retention failed, will retry", extra={"error": type(exc).__name__, "errno": exc.errno})
            return
        self._report_blocked(blocked_by)

    def _delete_oldest(self) -> str | None:
        """Delete until under the cap; returns the unshipped document that stopped it, if one did."""
        while self.total_bytes > self.cap_bytes:
            if not self._oldest:
                if self._complete:
                    return None
                self.load()
                continue
            name = self._oldest[0]
            if name >= self._newest:
                return None  # the restart's reconcile point
            if self._shipped is not None and name > self._shipped():
                return name
            if self._delete(name):
                self._oldest.popleft()
            else:
                self.load()  # removed by someone else: its size is unknown, so count xml/ again
        return None

    def _delete(self, name: str) -> bool:
        """Delete one document; False if it was already gone."""
        path = self.volume.xml_dir / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        path.unlink(missing_ok=True)
        self.total_bytes -= size
        self.metrics.documents_deleted.inc()
        log.debug("document deleted", extra={"document": name, "bytes": size, "xml_bytes": self.total_bytes})
        return True

    def _report_blocked(self, blocked_by: str | None) -> None:
        """Warn once when unshipped documents hold xml/ over the cap, and say when that is over."""
        if blocked_by is not None and not self._blocked:
            log.warning(
                "xml/ is over XML_RETENTION_BYTES but its oldest document is not shipped yet: keeping it",
                extra={"xml_bytes": self.total_bytes, "retention_bytes": self.cap_bytes, "document": blocked_by},
            )
        elif blocked_by is None and self._blocked:
            log.info("retention resumed", extra={"xml_bytes": self.total_bytes, "retention_bytes": self.cap_bytes})
        self._blocked = blocked_by is not None
