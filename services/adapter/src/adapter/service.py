"""The adapter as a service: the conversion loop, the file watcher that wakes it, retention of xml/, the
optional shipper and the probe server, with a graceful stop.

Conversion steps run in a worker thread (blocking file I/O, fsyncs and CPU-bound rendering), so the probes
and the watcher stay responsive during a backfill. The loop converts until there is nothing new, then waits
for the watcher, or RESCAN_INTERVAL_MS at most in case a filesystem event was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from podkit.probe import ProbeServer
from podkit.shipper import redact_url
from podkit.volume import ADAPTER, DeadLetter, Volume
from podkit.watch import ChangeWatcher, Wakeup

from adapter.config import Settings
from adapter.converter import Converter, Step
from adapter.metrics import Metrics
from adapter.retention import Retention
from adapter.shipping import DocumentShipper

log = logging.getLogger("adapter.service")

ERROR_RETRY_S = 1.0


class AdapterService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.volume = Volume(settings.shared_dir)
        self.metrics = Metrics()
        self.deadletter = DeadLetter(self.volume.deadletter(ADAPTER))
        self.shipper = (
            DocumentShipper.create(
                self.volume,
                self.deadletter,
                settings.sink_url,
                settings.sink_timeout,
                settings.sink_max_backoff,
                self.metrics,
            )
            if settings.sink_url
            else None
        )
        shipper = self.shipper
        self.retention = Retention(
            self.volume,
            settings.retention_bytes,
            self.metrics,
            shipped=(lambda: shipper.shipped) if shipper is not None else None,
        )
        self.converter = Converter(
            self.volume, self.metrics, settings.batch_max_events, self.retention, self.deadletter
        )
        self.watcher = ChangeWatcher(self.volume.events_dir, self._wake_up)
        self.probe = ProbeServer(settings.metrics_host, settings.metrics_port, self.ready, self.metrics.registry)
        self._wakeup = Wakeup()
        self._stop = asyncio.Event()
        self._step_error: str | None = None  # the last conversion step failed (a full or read-only volume)

    def _wake_up(self) -> None:
        self._wakeup.set()

    def request_stop(self) -> None:
        """Finish the current document and its checkpoint, then stop (SIGTERM, SIGINT)."""
        if not self._stop.is_set():
            log.info("stopping")
        self._stop.set()
        self._wakeup.set()

    def ready(self) -> tuple[bool, str]:
        """Not ready while conversion steps fail (ENOSPC, EROFS, EIO...), as the sidecar's: the XML falls
        behind and the pod should say so; ready again after the next step that succeeds (retried each second)."""
        if self._step_error is not None:
            return False, f"cannot write the shared volume: {self._step_error}"
        if not self.watcher.running:
            return False, "file watcher not running"
        for directory in (self.volume.xml_dir, self.volume.state_dir(ADAPTER), self.volume.deadletter_dir):
            if not os.access(directory, os.W_OK):
                return False, f"{directory} is not writable"
        return True, "ok"

    async def run(self) -> None:
        """Run until `request_stop`; returns once the last step's document and checkpoint are written."""
        try:
            await asyncio.to_thread(self._resume)
        except OSError as exc:
            log.error("cannot use SHARED_DIR", extra={"shared_dir": str(self.settings.shared_dir), "error": str(exc)})
            raise SystemExit(1) from None
        self.metrics.track_lag(self.converter.lag_bytes)
        await self.probe.start()
        log.info(
            "adapter started",
            extra={
                "shared_dir": str(self.settings.shared_dir),
                "metrics_port": self.probe.port,
                "batch_max_events": self.settings.batch_max_events,
                "retention_bytes": self.settings.retention_bytes,
                "xml_bytes": self.retention.total_bytes,
                "sink": redact_url(self.settings.sink_url) if self.settings.sink_url else None,
            },
        )
        watcher_stop = asyncio.Event()
        watcher = asyncio.create_task(self.watcher.run(watcher_stop), name="watcher")
        shipper = asyncio.create_task(self.shipper.run(), name="shipper") if self.shipper else None
        converting = asyncio.create_task(self._convert_until_stopped(), name="converter")
        try:
            await self._wait_for_stop(converting)
        finally:
            watcher_stop.set()
            if shipper is not None:
                shipper.cancel()  # at least once: an interrupted delivery is repeated after a restart
                with contextlib.suppress(asyncio.CancelledError):
                    await shipper
            await watcher
            await self.probe.close()
        log.info("adapter stopped")

    def _resume(self) -> None:
        """Blocking start-up reads (worker thread): where to convert from, what xml/ holds, what was shipped."""
        self.converter.resume()
        if self.shipper is not None:
            self.shipper.load()

    def _step(self) -> Step:
        """One conversion step, then retention (worker thread). Retention also runs on idle steps, so space
        comes back soon after the sink catches up with a backlog, even if no login comes."""
        step = self.converter.step()
        self.retention.enforce()
        return step

    async def _wait_for_stop(self, converting: asyncio.Task[None]) -> None:
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({converting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if converting.done():
            converting.result()  # raise what stopped it
            return
        try:
            await asyncio.wait_for(asyncio.shield(converting), self.settings.shutdown_grace)
        except TimeoutError:
            # The step is blocked in a worker thread that cannot be interrupted, and the interpreter would
            # wait for it at exit. Nothing is lost: documents and checkpoints are replaced atomically.
            log.error("shutdown grace expired during a conversion step, exiting without it")
            sys.stdout.flush()
            os._exit(1)

    async def _convert_until_stopped(self) -> None:
        while not self._stop.is_set():
            self._wakeup.clear()  # the step below sees whatever changed until now
            try:
                step = await asyncio.to_thread(self._step)
            except OSError as exc:
                self._step_error = f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
                log.error(
                    "conversion step failed, will retry",
                    extra={"error": type(exc).__name__, "errno": exc.errno, "retry_in_s": ERROR_RETRY_S},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), ERROR_RETRY_S)
                continue
            if self._step_error is not None:
                log.info("conversion recovered")
                self._step_error = None
            if step.document is not None and self.shipper is not None:
                self.shipper.notify(step.document)
            if not step.progressed:
                await self._wakeup.wait(self.settings.rescan_interval)


async def serve(settings: Settings) -> None:
    """Run the service in the current event loop until SIGTERM or SIGINT."""
    service = AdapterService(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.request_stop)
    await service.run()
