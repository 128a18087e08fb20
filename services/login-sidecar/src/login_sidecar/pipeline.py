"""Source to events/, exactly once: read complete lines, keep the JSON objects, append them, checkpoint.

One step moves one batch (every complete line available, up to BATCH_MAX_BYTES) through three durable
writes: the dead letters, the segment, then tail.json. A failed write leaves the batch pending and the
checkpoint where it was; the next step retries the writes not yet done, with the same bytes.

After a crash between the segment write and the checkpoint, the lines past the checkpointed segment size
are in events/ already: their event_ids (or, without one, their bytes) are skipped when the source is read
again from the checkpointed offset. They are the first valid lines after that offset, in order, so the
first line that does not match ends the skipping.
"""

from __future__ import annotations

import json
import json.scanner
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, cast

from podkit.volume import DeadLetter, SegmentOffset, list_segments

from login_sidecar.checkpoint import TailCheckpoint, load_tail, save_tail
from login_sidecar.config import Settings
from login_sidecar.deadletter import RAW_MAX_BYTES, source_record
from login_sidecar.fingerprint import SourcePosition
from login_sidecar.framing import Lines
from login_sidecar.metrics import Metrics
from login_sidecar.segments import SegmentWriter
from login_sidecar.tailer import Tailer, TailRead

log = logging.getLogger("login_sidecar.pipeline")

BATCH_MAX_BYTES: Final = 4 << 20
_SKIP: Final = "skip"


class SourceUnreadable(Exception):
    """The source exists but cannot be read (permissions, I/O error)."""


@dataclass(frozen=True)
class StepResult:
    committed: bool  # a batch (or only a new source position) is durable
    more: bool  # there is more to read now: step again without waiting
    events_written: int = 0


@dataclass
class _Batch:
    read: TailRead
    data: bytes  # the valid lines, byte for byte
    lines_read: int
    events_written: int
    skipped: int
    deadletters: list[dict[str, Any]]
    reasons: Counter[str] = field(default_factory=Counter)
    deadletters_done: bool = False
    bytes_written: int = 0
    checkpointed: bool = False


class Pipeline:
    """Driven by repeated `step()` calls from one thread at a time (they block on file I/O)."""

    def __init__(self, settings: Settings, metrics: Metrics, deadletter: DeadLetter) -> None:
        self.settings = settings
        self.metrics = metrics
        self.deadletter = deadletter
        self.tailer = Tailer(
            settings.source_file,
            max_line_bytes=settings.max_line_bytes,
            keep_head=RAW_MAX_BYTES,
            read_bytes=BATCH_MAX_BYTES,  # a backlog comes in one piece per batch: nothing to join
        )
        self.writer = SegmentWriter(settings.events_dir, settings.segment_max_bytes)
        self.committed: SegmentOffset | None = None  # end of what is in events/ and covered by tail.json
        self._checkpointed_source: SourcePosition | None = None
        self._skip: Counter[str | bytes] = Counter()
        self._pending: _Batch | None = None

    @property
    def started(self) -> bool:
        return self.committed is not None

    def start(self) -> None:
        """Open events/ and recover from a crash. Raises OSError (retry later) or CheckpointError."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = load_tail(self.settings.tail_checkpoint)
        self.writer.open(first=1 if checkpoint is None else checkpoint.written.segment + 1)
        if checkpoint is None:
            # A first checkpoint before the first write, so a crash before the second one is recovered too.
            if self.writer.position.offset > 0 or len(list_segments(self.settings.events_dir)) > 1:
                log.warning("no tail checkpoint but events/ has events: the source is read again from its start")
            self.writer.recover(None)  # only cuts a torn line
            checkpoint = TailCheckpoint(None, self.writer.position)
            save_tail(self.settings.tail_checkpoint, checkpoint, self.settings.source_file)
        past_checkpoint = self.writer.recover(checkpoint.written)
        self._skip = Counter(_event_key(line) for line in past_checkpoint)
        if past_checkpoint:
            log.warning(
                "found events written after the last checkpoint; they will not be written again",
                extra={"events": len(past_checkpoint)},
            )
        self.tailer.resume(checkpoint.source)
        self._checkpointed_source = checkpoint.source
        self.committed = self.writer.position
        log.info("tail started", extra={"source": str(self.settings.source_file), **self.committed.to_json()})

    def has_work(self) -> bool:
        """False when a step would find nothing new; cheap enough to ask from the event loop."""
        try:
            return self.committed is None or self._pending is not None or self.tailer.changed()
        except OSError:
            return True  # let step() report it

    def step(self) -> StepResult:
        """Read one batch and make it durable. Raises SourceUnreadable, or OSError from the shared volume."""
        if self.committed is None:
            self.start()
        if self._pending is None:
            try:
                read = self.tailer.read(BATCH_MAX_BYTES)
            except OSError as exc:
                raise SourceUnreadable(f"{self.settings.source_file}: {exc.strerror or exc}") from exc
            self.metrics.source_lag_bytes.set(self.tailer.lag_bytes)
            if read is None:
                return StepResult(committed=False, more=False)  # no source file yet
            if not (
                read.parts
                or read.truncated
                or read.rotated
                or read.lost_bytes
                or read.position != self._checkpointed_source
            ):
                return StepResult(committed=False, more=read.more)
            self._pending = self._prepare(read)
        batch = self._pending
        self._commit(batch)
        self._pending = None
        self._count(batch)
        return StepResult(committed=True, more=batch.read.more, events_written=batch.events_written)

    def close(self) -> None:
        self.tailer.close()
        self.writer.close()

    def _prepare(self, read: TailRead) -> _Batch:
        out: list[bytes] = []
        deadletters: list[dict[str, Any]] = []
        reasons: Counter[str] = Counter()
        lines_read = events_written = skipped = 0

        def reject(reason: str, offset: int, length: int, raw: bytes) -> None:
            reasons[reason] += 1
            deadletters.append(
                source_record(reason, path=read.path, file=read.file, offset=offset, length=length, raw=raw)
            )

        for part in read.parts:
            if not isinstance(part, Lines):
                lines_read += 1
                reject(part.reason, part.offset, part.length, part.head)
                continue
            data = part.data
            run = position = 0  # `run`: start of the valid lines not yet put in `out`
            lines = data.split(b"\n")
            lines.pop()  # data ends with a newline
            lines_read += len(lines)
            for line in lines:
                size = len(line) + 1
                verdict = self._verdict(line)
                if verdict is None:
                    events_written += 1
                else:
                    if run < position:
                        out.append(data[run:position])
                    run = position + size
                    if verdict == _SKIP:
                        skipped += 1
                    else:
                        reject(verdict, part.offset + position, len(line), line)
                position += size
            if run == 0:
                out.append(data)
            elif run < position:
                out.append(data[run:position])
        data = out[0] if len(out) == 1 else b"".join(out)
        return _Batch(read, data, lines_read, events_written, skipped, deadletters, reasons)

    def _verdict(self, line: bytes) -> str | None:
        """None for a line to write; else why not: a dead-letter reason, or _SKIP (already in events/)."""
        if len(line) > self.settings.max_line_bytes:
            return "line_too_long"
        try:
            value = _parse(line)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return "invalid_json"
        if not isinstance(value, dict):
            return "not_an_object"
        if self._skip:
            event_id = value.get("event_id")
            key = event_id if isinstance(event_id, str) else line
            if self._skip[key] > 0:
                self._skip[key] -= 1
                if not self._skip[key]:
                    del self._skip[key]
                return _SKIP
            log.warning(
                "the source after the checkpoint does not continue with the events found past it in events/",
                extra={"unmatched": self._skip.total()},
            )
            self._skip.clear()
        return None

    def _commit(self, batch: _Batch) -> None:
        if not batch.deadletters_done:
            self.deadletter.write(batch.deadletters)
            batch.deadletters_done = True
        while batch.bytes_written < len(batch.data):
            batch.bytes_written = self.writer.write(batch.data, batch.bytes_written)
        if not batch.checkpointed:
            checkpoint = TailCheckpoint(batch.read.position, self.writer.position)
            save_tail(self.settings.tail_checkpoint, checkpoint, self.settings.source_file)
            batch.checkpointed = True
            self._checkpointed_source = batch.read.position
        self.committed = self.writer.position

    def _count(self, batch: _Batch) -> None:
        metrics = self.metrics
        metrics.events_read.inc(batch.lines_read)
        metrics.events_written.inc(batch.events_written)
        metrics.duplicates_skipped.inc(batch.skipped)
        for reason, count in batch.reasons.items():
            metrics.deadletter.labels(reason).inc(count)
        if batch.read.truncated:
            metrics.truncations.inc()
        if batch.read.rotated:
            metrics.rotations.inc()
        if batch.read.lost_bytes:
            metrics.events_lost_bytes.inc(batch.read.lost_bytes)
        metrics.last_write.set(time.time())
        if batch.reasons:
            log.warning("source lines dead-lettered", extra={"reasons": dict(batch.reasons)})


# What json.loads ends in, minus its per-call overhead (the stub wants a scanner context: a decoder is one).
_scan_value = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))


def _parse(line: bytes) -> object:
    """The JSON value of a line of strict UTF-8; raises ValueError (or RecursionError) if it is not one."""
    text = line.decode("utf-8")
    try:
        value, end = _scan_value(text, 0)
    except StopIteration:  # not a value at index 0: leading whitespace, or garbage; let json say which
        return json.loads(text)
    if end != len(text) and text[end:].strip(" \t\r"):
        raise ValueError("extra data after the JSON value")
    return value


def _event_key(line: bytes) -> str | bytes:
    try:
        event_id = json.loads(line).get("event_id")
    except (ValueError, RecursionError, AttributeError):
        return line
    return event_id if isinstance(event_id, str) else line
