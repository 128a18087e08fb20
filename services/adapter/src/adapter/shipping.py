"""Optional: POST each XML document to XML_SINK_URL, at least once, without ever slowing XML writing down.

Shipping runs beside conversion with its own checkpoint, state/adapter/ship.json = {"document": NAME}: the
last document the sink took (2xx) or refused for good (other 4xx). Document names sort in the order they
were written, so what is left to ship is every name after that one. A sink outage only grows that backlog:
the converter, the XML checkpoint and the sidecar's retention never wait for the sink.

Retention (XML_RETENTION_BYTES) reads `shipped`, the in-memory copy of that checkpoint, and never deletes a
document after it.

New names come from the converter (`notify`); at start-up, and if the in-memory queue ever grows past
MAX_QUEUED, the queue is rebuilt from a listing of xml/ instead, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from pathlib import Path
from typing import Final

from podkit.files import read_json, write_json_atomic
from podkit.shipper import Delivery, HttpShipper, RetryPolicy
from podkit.volume import ADAPTER, DeadLetter, Volume

from adapter.documents import parse_document_name
from adapter.metrics import Metrics

log = logging.getLogger("adapter.shipping")

MAX_QUEUED: Final = 10_000
CONTENT_TYPE: Final = "application/xml"
DOCUMENT_HEADER: Final = "x-loginpod-document"
RETRY_AFTER_ERROR_S: Final = 1.0


class DocumentShipper:
    def __init__(self, volume: Volume, deadletter: DeadLetter, shipper: HttpShipper, metrics: Metrics) -> None:
        self.volume = volume
        self.deadletter = deadletter
        self.shipper = shipper
        self.metrics = metrics
        self.shipped = ""  # ship.json in memory (only this process writes it): read by retention's thread
        self._queue: collections.deque[str] = collections.deque()
        self._last_queued = ""
        self._rescan = True
        self._wake = asyncio.Event()

    @classmethod
    def create(
        cls,
        volume: Volume,
        deadletter: DeadLetter,
        url: str,
        timeout: float,
        max_backoff: float,
        metrics: Metrics,
    ) -> DocumentShipper:
        shipper = HttpShipper(
            url,
            content_type=CONTENT_TYPE,
            timeout=timeout,
            policy=RetryPolicy(max_backoff=max_backoff),
            on_retry=lambda reason: metrics.ship_retries.labels(reason).inc(),
        )
        return cls(volume, deadletter, shipper, metrics)

    @property
    def checkpoint(self) -> Path:
        return self.volume.checkpoint(ADAPTER, "ship")

    def load(self) -> None:
        """Read the ship checkpoint (at start-up, before conversion and retention begin)."""
        self.shipped = self.shipped_up_to()

    def shipped_up_to(self) -> str:
        try:
            value = read_json(self.checkpoint)
            return str(value["document"]) if value else ""
        except (ValueError, KeyError, TypeError):
            log.error("ignoring a malformed ship checkpoint", extra={"path": str(self.checkpoint)})
            return ""

    def notify(self, name: str) -> None:
        """A new document was written (called on the event loop, in the order documents are written)."""
        if not self._rescan and name > self._last_queued:
            if len(self._queue) >= MAX_QUEUED:
                self._rescan = True  # list xml/ again once the queue is shipped
            else:
                self._queue.append(name)
                self._last_queued = name
        self._wake.set()

    def _rebuild_queue(self) -> None:
        """Queue the documents after the ship checkpoint. Runs on the event loop, so no `notify` interleaves."""
        done = self.shipped
        pending = sorted(n for n in os.listdir(self.volume.xml_dir) if parse_document_name(n) and n > done)
        self._rescan = len(pending) > MAX_QUEUED
        self._queue = collections.deque(pending[:MAX_QUEUED])
        self._last_queued = self._queue[-1] if self._queue else done

    async def run(self) -> None:
        """Ship until cancelled."""
        try:
            while True:
                if not self._queue and self._rescan:
                    self._rebuild_queue()
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    await self._ship(self._queue[0])
                except OSError as exc:  # reading the document or writing ship.json: retry later
                    log.error("shipping step failed, will retry", extra={"error": type(exc).__name__})
                    await asyncio.sleep(RETRY_AFTER_ERROR_S)
                    continue
                self._queue.popleft()
        finally:
            await self.shipper.aclose()

    async def _ship(self, name: str) -> None:
        try:
            body = await asyncio.to_thread((self.volume.xml_dir / name).read_bytes)
        except FileNotFoundError:
            log.warning("document vanished before shipping", extra={"document": name})
            return
        outcome = await self.shipper.deliver(body, extra_headers={DOCUMENT_HEADER: name})
        if outcome.delivery is Delivery.REJECTED:
            self.metrics.documents_rejected.inc()
            record = {"reason": "sink refused the document", "status": outcome.status, "document": name}
            await asyncio.to_thread(self.deadletter.write, [record])
        else:
            self.metrics.documents_shipped.inc()
        await asyncio.to_thread(write_json_atomic, self.checkpoint, {"document": name})
        self.shipped = name
