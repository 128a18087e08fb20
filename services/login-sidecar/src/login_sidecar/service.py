"""Wires the sidecar: the tail pipeline (in a worker thread, it blocks on fsync), the file watcher that wakes
it, shipping, retention and the probe server, and the order they stop in: source to its end, then what is
pending to the sink.

The tail loop reads until the source has nothing new, then waits for the watcher to report a change in the
source's directory, or POLL_INTERVAL_MS at most: that stat poll is the fallback when a change is missed or the
watcher is down, and it also catches a rotation or truncation nobody reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Final, TypeVar

from podkit.probe import ProbeServer
from podkit.volume import CheckpointError, DeadLetter, SegmentOffset
from podkit.watch import ChangeWatcher, Wakeup

from login_sidecar.config import Settings
from login_sidecar.metrics import Metrics
from login_sidecar.pipeline import Pipeline, SourceUnreadable
from login_sidecar.retention import delete_consumed
from login_sidecar.shipping import Shipping

log = logging.getLogger("login_sidecar.service")

T = TypeVar("T")
RETRY_INITIAL: Final = 0.1
RETRY_MAX: Final = 5.0
RETENTION_INTERVAL: Final = 1.0

# httpx logs every request at INFO: one line per batch is noise next to our own counters.
logging.getLogger("httpx").setLevel(logging.WARNING)


class Service:
    def __init__(self, settings: Settings, *, retention_interval: float = RETENTION_INTERVAL) -> None:
        self.settings = settings
        self.retention_interval = retention_interval
        self.metrics = Metrics()
        self.deadletter = DeadLetter(settings.deadletter_file)
        self.pipeline = Pipeline(settings, self.metrics, self.deadletter)
        self.committed: SegmentOffset | None = None  # the pipeline's, as the event loop last saw it
        self.shipping = (
            Shipping(settings, self.metrics, self.deadletter, lambda: self.committed) if settings.sink_url else None
        )
        self.probe = ProbeServer(settings.metrics_host, settings.metrics_port, self.ready, self.metrics.registry)
        # The source's directory, not the file: a rotation renames the file and creates a new one, which a watch
        # on the file would not see.
        self.watcher = ChangeWatcher(
            settings.source_file.parent, self._source_changed, path_filter=self.pipeline.tailer.concerns
        )
        self.metrics.watcher_running.set_function(lambda: float(self.watcher.running))
        self._stop = asyncio.Event()
        self._stopping = False
        self._write_error: str | None = None
        self._source_error: str | None = None
        self._inflight: asyncio.Future[object] | None = None
        self._wakeup = Wakeup()  # set by the watcher (a change in the source's directory) and by the shutdown

    def request_stop(self) -> None:
        """Graceful stop (SIGTERM/SIGINT): run() returns once the source is written and the rest shipped."""
        self._stop.set()

    def ready(self) -> tuple[bool, str]:
        """Not the watcher: without it the poll still tails the source (slower), and a sidecar that is not ready
        takes the whole pod out of service (loginpod_sidecar_watcher_running says whether it runs)."""
        if self._write_error is not None:
            return False, f"cannot write the shared volume: {self._write_error}"
        if self._source_error is not None:
            return False, f"cannot read the source: {self._source_error}"
        if not self.pipeline.started:
            return False, "starting"
        if self.shipping is not None and self.shipping.error is not None:
            return False, self.shipping.error
        if not os.access(self.settings.events_dir, os.W_OK):
            return False, f"{self.settings.events_dir} is not writable"
        source = self.settings.source_file
        if source.exists() and not os.access(source, os.R_OK):
            return False, f"{source} is not readable"
        return True, "ok"

    async def run(self) -> None:
        """Until request_stop(); raises CheckpointError (or OSError from the probe port) when it cannot run."""
        await self.probe.start()
        log.info("probes listening", extra={"host": self.settings.metrics_host, "port": self.probe.port})
        tasks = [asyncio.create_task(self._tail_loop(), name="tail")]
        if self.shipping is not None:
            tasks.append(asyncio.create_task(self.shipping.run(), name="shipping"))
        retention = asyncio.create_task(self._retention_loop(), name="retention")
        watcher_stop = asyncio.Event()
        watcher = asyncio.create_task(self.watcher.run(watcher_stop), name="watcher")
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop:
                    task.result()  # a fatal error (the loops do not return on their own)
                    raise RuntimeError(f"{task.get_name()} stopped unexpectedly")
            await self._shutdown(*tasks)
        finally:
            watcher_stop.set()  # before the cancel: ends watchfiles' thread within a step, not at its timeout
            for task in (stop, retention, watcher, *tasks):
                task.cancel()
            await asyncio.gather(stop, retention, watcher, *tasks, return_exceptions=True)
            if self._inflight is not None:
                await asyncio.wait([self._inflight])  # never close files under a running step
                if not self._inflight.cancelled():
                    self._inflight.exception()
            self.pipeline.close()
            await self.probe.close()
            log.info("stopped")

    async def _shutdown(self, tail: asyncio.Task[None], shipping: asyncio.Task[None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        log.info("stopping: writing what is left in the source", extra={"grace_s": self.settings.shutdown_grace})
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(tail), max(0.0, deadline - loop.time()))
        except TimeoutError:
            log.warning("grace period over before the source was written; it stays in the source for next time")
            return
        if shipping is None or self.shipping is None:
            return
        self.shipping.drain()
        try:
            await asyncio.wait_for(asyncio.shield(shipping), max(0.0, deadline - loop.time()))
        except TimeoutError:
            log.warning(
                "grace period over before everything was shipped; ship.json keeps the rest for next time",
                extra={"unshipped_events": self.shipping.lag_events},
            )

    async def _in_thread(self, function: Callable[[], T]) -> T:
        """Run a blocking step in a worker thread (asyncio.to_thread, docs/design.md "File I/O"); a cancelled
        caller does not stop it (see run's cleanup)."""
        step = asyncio.ensure_future(asyncio.to_thread(function))
        self._inflight = step  # type: ignore[assignment]
        return await asyncio.shield(step)

    async def _tail_loop(self) -> None:
        delay = RETRY_INITIAL
        while True:
            if not self._stopping and not self.pipeline.has_work():
                await self._wait_for_change()  # an idle look costs no thread hop
                continue
            try:
                result = await self._in_thread(self.pipeline.step)
            except CheckpointError:
                log.critical("tail checkpoint unreadable; not guessing where to resume", exc_info=True)
                raise
            except SourceUnreadable as exc:
                self._source_error = str(exc)
                log.error("cannot read the source; retrying", extra={"error": str(exc), "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            except OSError as exc:
                self._write_error = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
                self.metrics.write_errors.inc()
                log.error(
                    "cannot write the shared volume; the checkpoint stays, retrying",
                    extra={"error": self._write_error, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self._write_error is not None or self._source_error is not None:
                log.info("tail recovered")
            delay = RETRY_INITIAL
            self._write_error = self._source_error = None
            if self.pipeline.committed != self.committed:
                self.committed = self.pipeline.committed
                if self.shipping is not None:
                    self.shipping.notify(result.events_written)
            if not result.more:
                if self._stopping:
                    return
                await self._wait_for_change()

    def _source_changed(self) -> None:
        self._wakeup.set()

    async def _wait_for_change(self) -> None:
        """Until the watcher reports a change (at once if it did during the last step), or the poll interval."""
        await self._wakeup.wait(self.settings.poll_interval)

    async def _retention_loop(self) -> None:
        consumers = [self.settings.volume.conversion_checkpoint]
        if self.shipping is not None:
            consumers.append(self.settings.ship_checkpoint)
        while True:
            await asyncio.sleep(self.retention_interval)
            if not self.pipeline.started:
                continue
            try:
                deleted = await asyncio.to_thread(delete_consumed, self.settings.events_dir, consumers)
            except OSError as exc:
                log.warning("retention failed; retrying later", extra={"error": str(exc)})
                continue
            self.metrics.segments_deleted.inc(len(deleted))
