"""events/ to the sink, at least once: NDJSON batches from ship.json on, by size and by time.

A batch holds whole lines of one segment, byte for byte (each event keeps its event_id, receivers
deduplicate on it), and only lines already covered by tail.json. podkit.shipper.HttpShipper retries it
until the sink answers 2xx (ship.json moves past it) or refuses it for good with another 4xx (its events
go to the dead-letter file, then ship.json moves past it). A restart re-sends at most the batch in flight.

Duplicates: every batch carries an `Idempotency-Key` made from its segment, byte range and bytes, the same on
every retry (and after a restart that forms the same batch), so a receiver can drop a repeat whole. After
SHRINK_AFTER failed attempts in a row the batch is halved (down to one event; it grows back by doubling after
each delivery): a sink that fails under big batches gets smaller ones, and a sink that takes a batch and loses
the answer gets fewer events again on each retry. Events sent again after an attempt whose answer was lost
(the sink may have them) are counted: loginpod_sidecar_ship_duplicates_sent_total.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Final, Protocol

from podkit.shipper import Delivery, HttpShipper, Outcome, RetryPolicy
from podkit.volume import (
    CheckpointError,
    DeadLetter,
    SegmentOffset,
    list_segments,
    load_offset,
    save_offset,
    segment_name,
)
from podkit.watch import Wakeup

from login_sidecar.config import Settings
from login_sidecar.deadletter import rejected_record
from login_sidecar.metrics import Metrics
from login_sidecar.sinks import syslog_sink

log = logging.getLogger("login_sidecar.shipping")

CONTENT_TYPE: Final = "application/x-ndjson"
_MIN_READ: Final = 64 << 10
_LOCAL_RETRY_MAX: Final = 5.0
SHRINK_AFTER: Final = 3  # failed attempts in a row before the batch is halved
IDEMPOTENCY_HEADER: Final = "idempotency-key"


class BatchSink(Protocol):
    """Where batches go. `key` names the batch's bytes (the same on every retry); give up after `max_attempts`
    failed attempts (Delivery.UNDELIVERED), backing off as if `prior_failures` had failed before."""

    async def deliver(self, body: bytes, *, key: str, max_attempts: int, prior_failures: int) -> Outcome: ...

    async def aclose(self) -> None: ...


class HttpSink:
    """A BatchSink over podkit.shipper.HttpShipper: NDJSON POSTs with an Idempotency-Key header."""

    def __init__(self, shipper: HttpShipper) -> None:
        self.shipper = shipper

    async def deliver(self, body: bytes, *, key: str, max_attempts: int, prior_failures: int) -> Outcome:
        return await self.shipper.deliver(
            body, extra_headers={IDEMPOTENCY_HEADER: key}, max_attempts=max_attempts, prior_failures=prior_failures
        )

    async def aclose(self) -> None:
        await self.shipper.aclose()


def http_shipper(settings: Settings, metrics: Metrics) -> HttpShipper:
    assert settings.sink_url is not None
    return HttpShipper(
        settings.sink_url,
        content_type=CONTENT_TYPE,
        timeout=settings.sink_timeout,
        policy=RetryPolicy(max_backoff=settings.sink_max_backoff),
        on_retry=lambda reason: metrics.ship_retries.labels(reason).inc(),
    )


def batch_key(segment: str, start: int, end: int, body: bytes) -> str:
    """The batch's id: where its bytes are in events/ and a digest of them (segment numbers restart with a new
    pod's volume; the digest keeps two pods' batches apart at a shared receiver)."""
    return f"{segment}:{start}-{end}:{hashlib.sha256(body).hexdigest()[:32]}"


class Shipping:
    """Runs as one task; `notify` after each tail commit, `drain` to ship what is left, then return."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        deadletter: DeadLetter,
        committed: Callable[[], SegmentOffset | None],
        sink: BatchSink | None = None,
    ) -> None:
        assert settings.sink_url is not None
        self.settings = settings
        self.metrics = metrics
        self.deadletter = deadletter
        self._committed = committed
        # SINK_URL relp:// or syslog+...:// (login_sidecar.sinks), else HTTP.
        self._sink = sink or syslog_sink(settings, metrics) or HttpSink(http_shipper(settings, metrics))
        self._max_events = settings.sink_batch_max_events  # halved on repeated failure, doubled back on success
        self._failures = 0  # failed attempts in a row
        self._maybe_taken_until: SegmentOffset | None = None  # the sink may hold the events before this
        self.acked: SegmentOffset | None = None  # what ship.json says
        self.error: str | None = None  # a local failure (ship.json or dead letters not writable)
        self.lag_events = 0
        self._next = SegmentOffset(0, 0)  # the first byte not in a batch
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._batch_since = 0.0
        self._fd = -1
        self._fd_segment = 0
        self._wake = Wakeup()  # notify() and drain(); the waits' deadline is the batch's flush time
        self._draining = False

    def notify(self, events_written: int) -> None:
        self.lag_events += events_written
        self.metrics.ship_lag_events.set(self.lag_events)
        self._wake.set()

    def drain(self) -> None:
        """Ship everything committed now, without waiting for the flush interval, then return from run()."""
        self._draining = True
        self._wake.set()

    async def run(self) -> None:
        delay = 0.1
        limit: SegmentOffset | None = None
        try:
            while True:
                try:
                    if limit is None:
                        limit = await self._start()
                        if limit is None:
                            return  # stopped before the tail ever started
                    limit = self._committed() or limit
                    if await self._step(limit):
                        return
                except OSError as exc:  # events/ unreadable, or ship.json unwritable: nothing moved
                    self.error = f"shipping: {exc}"
                    log.error("shipping failed on the shared volume; retrying", extra={"error": str(exc)})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _LOCAL_RETRY_MAX)
                    continue
                delay = 0.1
        finally:
            self._close_segment()
            await self._sink.aclose()

    async def _step(self, limit: SegmentOffset) -> bool:
        """Fill the batch, ship it if it is due, or wait for more; True once drained."""
        self._wake.clear()
        filled = await asyncio.to_thread(self._fill, limit)  # opens and reads events/: off the event loop
        if self._batch and (filled != "caught_up" or self._draining or self._batch_due()):
            await self._flush()
            return False
        if not self._batch and self.acked is not None and self._next > self.acked:
            await self._save(self._next)  # moved on to the next segment: the last one is done
        self.error = None
        if self._draining and not self._batch:
            return True
        # Until notify()/drain(), or the batch is due; with no batch nothing is due: look again after an interval.
        interval = self.settings.sink_flush_interval
        await self._wake.wait(max(0.0, self._batch_since + interval - time.monotonic()) if self._batch else interval)
        return False

    async def _start(self) -> SegmentOffset | None:
        while self._committed() is None:  # the tail has not opened events/ yet
            if self._draining:
                return None
            await self._wake.wait(0.1)
        try:
            acked = await asyncio.to_thread(load_offset, self.settings.ship_checkpoint)
        except CheckpointError as exc:
            log.error("ship checkpoint unreadable; shipping again from the oldest segment", extra={"error": str(exc)})
            acked = None
        limit = self._committed()
        assert limit is not None
        self.lag_events = 0  # from here on, notify() counts what is written after `limit`
        segments = await asyncio.to_thread(list_segments, self.settings.events_dir)
        if acked is None or acked.segment not in segments:
            later = [n for n in segments if acked is None or n > acked.segment]
            start = SegmentOffset((later or segments or [limit.segment])[0], 0)
            if acked is not None:
                log.warning("shipped segment is gone; going on with the next one", extra={"segment": start.name})
            acked = start
        self.acked = self._next = acked
        # Not `self.lag_events += await ...`: that reads lag_events before the await and loses a notify() meanwhile.
        unshipped = await asyncio.to_thread(_count_lines, self.settings, acked, limit)
        self.lag_events += unshipped
        self.metrics.ship_lag_events.set(self.lag_events)
        log.info("shipping started", extra={"sink": self.settings.sink_url, "from": acked.to_json()})
        return limit

    def _batch_due(self) -> bool:
        return time.monotonic() >= self._batch_since + self.settings.sink_flush_interval

    def _fill(self, limit: SegmentOffset) -> str:
        """Add lines to the batch: returns "full", "segment_end" (flush before the next one) or "caught_up".

        Runs in a worker thread while the shipping task waits for it: notify() and drain() only touch the
        lag count, the wake-up and the drain flag meanwhile."""
        settings = self.settings
        while True:
            if len(self._batch) >= self._max_events or self._batch_bytes >= settings.sink_batch_max_bytes:
                return "full"
            segment, offset = self._next.segment, self._next.offset
            if segment > limit.segment:
                return "caught_up"
            fd = self._open_segment(segment)
            end = limit.offset if segment == limit.segment else (os.fstat(fd).st_size if fd >= 0 else 0)
            if offset >= end:
                if segment == limit.segment:
                    return "caught_up"
                if self._batch:
                    return "segment_end"
                later = [n for n in list_segments(settings.events_dir) if n > segment]
                if not later:
                    return "caught_up"
                self._next = SegmentOffset(later[0], 0)
                continue
            if not self._take_lines(fd, end):
                return "full"

    def _take_lines(self, fd: int, end: int) -> bool:
        """Add whole lines from fd between the next offset and `end`; False when the batch is full."""
        settings = self.settings
        offset = self._next.offset
        want = min(end - offset, max(settings.sink_batch_max_bytes - self._batch_bytes, _MIN_READ))
        while True:
            data = os.pread(fd, want, offset)
            cut = data.rfind(b"\n") + 1
            if cut or len(data) >= end - offset:
                break
            want = min(end - offset, want * 2)  # one line longer than what we read
        if not cut:  # no newline before `end`: cannot happen below a committed position
            raise OSError(f"{segment_name(self._next.segment)}: no line end before offset {end}")
        position = 0
        for line in data[:cut].split(b"\n")[:-1]:
            size = len(line) + 1
            if self._batch and (
                len(self._batch) >= self._max_events or self._batch_bytes + size > settings.sink_batch_max_bytes
            ):
                self._next = SegmentOffset(self._next.segment, offset + position)
                return False
            if not self._batch:
                self._batch_since = time.monotonic()
            self._batch.append(data[position : position + size])
            self._batch_bytes += size
            position += size
        self._next = SegmentOffset(self._next.segment, offset + position)
        return True

    async def _flush(self) -> None:
        """Deliver the batch, then record the outcome durably (retrying local failures: nothing is skipped)."""
        body = b"".join(self._batch)
        start = self._next.offset - self._batch_bytes
        maybe_taken = self._maybe_taken(start)
        outcome = await self._sink.deliver(
            body,
            key=batch_key(self._next.name, start, self._next.offset, body),
            max_attempts=SHRINK_AFTER,
            prior_failures=self._failures,
        )
        # Each attempt re-sends what an earlier call's lost answer left in doubt; after a lost answer in this
        # call, each further attempt re-sends the rest as well.
        duplicates = maybe_taken * outcome.attempts + (len(self._batch) - maybe_taken) * outcome.resent
        if duplicates:
            self.metrics.ship_duplicates_sent.inc(duplicates)
        if outcome.possibly_delivered:
            self._maybe_taken_until = max(self._maybe_taken_until or self._next, self._next)
        if outcome.delivery is Delivery.UNDELIVERED:
            self._failures += outcome.attempts
            self._shrink(start)
            return
        self._failures = 0
        self._max_events = min(self.settings.sink_batch_max_events, self._max_events * 2)
        delay = 0.1
        while True:
            try:
                await self._settle(outcome)
                break
            except OSError as exc:
                self.error = f"cannot record shipped batch: {exc}"
                self.metrics.write_errors.inc()
                log.error("cannot record a shipped batch; retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LOCAL_RETRY_MAX)
        self.error = None
        count = len(self._batch)
        self.lag_events = max(0, self.lag_events - count)
        self.metrics.ship_lag_events.set(self.lag_events)
        self._batch, self._batch_bytes = [], 0

    def _maybe_taken(self, start: int) -> int:
        """How many of the batch's first events an earlier attempt (of a bigger batch) may have delivered."""
        until = self._maybe_taken_until
        if until is None:
            return 0
        if until <= SegmentOffset(self._next.segment, start):
            self._maybe_taken_until = None  # the batch starts past it: shipping has moved on
            return 0
        if until.segment != self._next.segment:
            return len(self._batch)
        count, offset = 0, start
        for line in self._batch:
            offset += len(line)
            if offset > until.offset:
                break
            count += 1
        return count

    def _shrink(self, start: int) -> None:
        """Halve the batch: its first half is retried now, the rest goes back to be read again."""
        keep = max(1, len(self._batch) // 2)
        self._max_events = keep
        if keep == len(self._batch):
            return
        self._batch = self._batch[:keep]
        self._batch_bytes = sum(len(line) for line in self._batch)
        self._next = SegmentOffset(self._next.segment, start + self._batch_bytes)
        log.warning(
            "sink keeps failing; sending smaller batches",
            extra={"events": keep, "failed_attempts": self._failures, "segment": self._next.name},
        )

    async def _settle(self, outcome: Outcome) -> None:
        assert self.acked is not None
        start = self._next.offset - self._batch_bytes
        if outcome.delivery is Delivery.REJECTED:
            records = []
            offset = start
            for line in self._batch:
                records.append(
                    rejected_record(status=outcome.status, segment=self._next.name, offset=offset, line=line[:-1])
                )
                offset += len(line)
            await asyncio.to_thread(self.deadletter.write, records)
            self.metrics.deadletter.labels("sink_rejected").inc(len(records))
        await self._save(self._next)
        if outcome.delivery is Delivery.DELIVERED:
            self.metrics.events_shipped.inc(len(self._batch))
            self.metrics.ship_batches.labels("delivered").inc()
            self.metrics.last_ship.set(time.time())
        else:
            self.metrics.ship_batches.labels("rejected").inc()
            log.warning(
                "sink refused a batch; its events are in the dead-letter file",
                extra={"status": outcome.status, "events": len(self._batch), "segment": self._next.name},
            )

    async def _save(self, position: SegmentOffset) -> None:
        await asyncio.to_thread(save_offset, self.settings.ship_checkpoint, position)
        self.acked = position

    def _open_segment(self, segment: int) -> int:
        if self._fd >= 0 and self._fd_segment == segment:
            return self._fd
        self._close_segment()
        try:
            self._fd = os.open(self.settings.events_dir / segment_name(segment), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            log.warning("segment to ship is gone", extra={"segment": segment_name(segment)})
            return -1
        self._fd_segment = segment
        return self._fd

    def _close_segment(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _count_lines(settings: Settings, start: SegmentOffset, end: SegmentOffset) -> int:
    """Lines in events/ from `start` to `end`: the events not yet shipped, for the lag gauge."""
    total = 0
    for number in list_segments(settings.events_dir):
        if not start.segment <= number <= end.segment:
            continue
        begin = start.offset if number == start.segment else 0
        stop = end.offset if number == end.segment else None
        try:
            with open(settings.events_dir / segment_name(number), "rb") as file:
                file.seek(begin)
                remaining = None if stop is None else max(0, stop - begin)
                while remaining is None or remaining > 0:
                    chunk = file.read(1 << 20 if remaining is None else min(1 << 20, remaining))
                    if not chunk:
                        break
                    total += chunk.count(b"\n")
                    if remaining is not None:
                        remaining -= len(chunk)
        except FileNotFoundError:
            continue
    return total
