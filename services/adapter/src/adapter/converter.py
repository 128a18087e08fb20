"""The conversion loop's one step: read a batch of new lines, write its XML document, then the checkpoint.

Blocking file work only (it runs in a worker thread, so the probes stay responsive). Order of the writes, so
that each batch is converted exactly once across a crash at any point:
1. dead letters of the batch (appended and fsynced; a crash before the checkpoint repeats them: each record
   holds its segment and offset, so a repeat is recognisable),
2. the document (temporary name, then rename),
3. the checkpoint. On restart, `resume.resume_position` takes the furthest of 2 and 3.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from podkit.volume import ADAPTER, DeadLetter, SegmentOffset, Volume, list_segments, segment_name

from adapter.documents import write_document
from adapter.metrics import Metrics
from adapter.reader import Batch, read_batch
from adapter.render import render
from adapter.resume import resume_position, write_checkpoint
from adapter.retention import Retention
from adapter.sanitize import Record, may_hold_forbidden, sanitize

log = logging.getLogger("adapter.converter")


@dataclass(frozen=True)
class Step:
    progressed: bool
    document: str | None = None


@dataclass(frozen=True)
class Rejected:
    offset: int
    reason: str
    line: bytes


class Converter:
    def __init__(
        self,
        volume: Volume,
        metrics: Metrics,
        batch_max_events: int,
        retention: Retention | None = None,
        deadletter: DeadLetter | None = None,
    ) -> None:
        self.volume = volume
        # Shared with the shipper when there is one: one writer per file (podkit.volume.DeadLetter).
        self.deadletter = deadletter or DeadLetter(volume.deadletter(ADAPTER))
        self.metrics = metrics
        self.batch_max_events = batch_max_events
        self.retention = retention  # told of each document as soon as it is written, so its total stays exact
        self.position: SegmentOffset | None = None

    def resume(self) -> None:
        """Find where to start: the checkpoint or, if further, the newest document; count what xml/ holds."""
        self.volume.create(ADAPTER)
        self.position = resume_position(self.volume)
        if self.retention is not None:
            self.retention.load()
        log.info(
            "resuming",
            extra={"segment": self.position.name, "offset": self.position.offset}
            if self.position
            else {"segment": None},
        )

    def step(self) -> Step:
        """Convert the next batch, or move to the next segment; `progressed` is False when there is nothing."""
        segments = list_segments(self.volume.events_dir)
        if self.position is None:
            if not segments:
                return Step(progressed=False)
            self.position = SegmentOffset(segments[0], 0)
        current = self.position
        later = [number for number in segments if number > current.segment]
        if current.segment not in segments:
            return self._next_segment(later, reason="segment deleted")
        try:
            batch = read_batch(
                self.volume.events_dir, current.segment, current.offset, self.batch_max_events, closed=bool(later)
            )
        except FileNotFoundError:
            return Step(progressed=False)  # deleted since the listing: the next step moves on
        if batch.end == batch.start:
            # `later` was listed before the read, and the sidecar writes nothing to a segment once a later
            # one exists: an empty read means this segment is fully converted.
            return self._next_segment(later, reason="segment complete") if later else Step(progressed=False)
        return Step(progressed=True, document=self.convert(batch))

    def _next_segment(self, later: list[int], *, reason: str) -> Step:
        if not later:
            return Step(progressed=False)
        assert self.position is not None
        log.info("next segment", extra={"from": self.position.name, "to": segment_name(later[0]), "reason": reason})
        self.position = SegmentOffset(later[0], 0)
        # Checkpoint the move at once: the sidecar may then delete the finished segment.
        write_checkpoint(self.volume, self.position)
        return Step(progressed=True)

    def convert(self, batch: Batch) -> str | None:
        """Write the batch's document (if it holds any event) and advance the checkpoint past it."""
        started = time.perf_counter()
        records: list[Record] = []
        dead: list[Rejected] = []
        dropped = sanitized = 0
        offset = batch.start
        for line in batch.lines:
            try:
                # What json.loads(bytes) does for UTF-8, keeping the text for `may_hold_forbidden`.
                text = line.decode("utf-8", "surrogatepass")
                event: Any = json.loads(text)
                if not isinstance(event, dict):
                    dead.append(Rejected(offset, "not a JSON object", line))
                else:
                    clean = sanitize(event, check_characters=may_hold_forbidden(text))
                    records.append(clean.record)
                    dropped += clean.dropped_keys
                    sanitized += clean.sanitized_values
            except ValueError:
                dead.append(Rejected(offset, "not valid JSON", line))
            except RecursionError:
                dead.append(Rejected(offset, "nested too deeply", line))
            offset += len(line) + 1
        if dead:
            self._write_dead_letters(batch.segment, dead)
        name = None
        if records:
            xml = render(records)
            name = write_document(self.volume, batch.segment, batch.start, batch.end, xml)
            if self.retention is not None:
                self.retention.added(name, len(xml))
        self.position = SegmentOffset(batch.segment, batch.end)
        write_checkpoint(self.volume, self.position)
        self.metrics.events_converted.inc(len(records))
        self.metrics.documents_written.inc(name is not None)
        self.metrics.deadletter.inc(len(dead))
        self.metrics.dropped_keys.inc(dropped)
        self.metrics.sanitized_values.inc(sanitized)
        self.metrics.convert_seconds.observe(time.perf_counter() - started)
        log.debug("converted", extra={"document": name, "events": len(records), "deadletter": len(dead)})
        return name

    def _write_dead_letters(self, number: int, dead: list[Rejected]) -> None:
        segment = segment_name(number)
        records = [
            {
                "segment": segment,
                "offset": item.offset,
                "reason": item.reason,
                "line": item.line.decode("utf-8", "backslashreplace"),
            }
            for item in dead
        ]
        self.deadletter.write(records)
        for item in dead:
            # Where, never what: the line itself may hold anything.
            log.warning(
                "line sent to the dead letter file",
                extra={"segment": segment, "offset": item.offset, "reason": item.reason},
            )

    def lag_bytes(self) -> float:
        """Bytes in events/ past the current position (for the lag gauge; read at scrape time)."""
        position = self.position
        total = 0
        for number in list_segments(self.volume.events_dir):
            if position is None or number >= position.segment:
                try:
                    size = (self.volume.events_dir / segment_name(number)).stat().st_size
                except FileNotFoundError:
                    continue
                total += size - position.offset if position and number == position.segment else size
        return float(max(total, 0))
