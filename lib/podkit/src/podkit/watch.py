"""Wake a loop when a directory changes (watchfiles, i.e. inotify on Linux), as Fluent Bit's tail input and
Filebeat do, instead of polling it every few milliseconds.

watchfiles' defaults (step 50 ms, debounce 1600 ms) suit a reloader, not a pipeline with a 20 ms latency
budget. Its Rust loop sleeps `step` ms, then returns once the set of changes stopped growing for one more
step (or `debounce` ms passed), so a change is reported 1 to 2 steps after it happens. Appends to one file
are the same (change, path) pair, so a busy file does not keep the loop waiting. With step 2 ms the measured
append-to-wake-up delay is about 3 ms (bench/latency.py); the idle cost is a thread taking the GIL every
step, about 1% of a core.

A watch cannot be set on a directory that does not exist yet and dies with the directory; inotify sees no
change made by another host (NFS) and fails when fs.inotify.max_user_watches or max_user_instances is
exhausted. So the caller keeps a slower poll or rescan for all of these, and this watcher keeps trying to
set its watch again. Whether the caller is ready without its watch is the caller's choice (`running`).
`Wakeup` is that change-or-poll wait, the one both services' loops use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from watchfiles import Change, awatch

log = logging.getLogger("podkit.watch")

STEP_MS: Final = 2
DEBOUNCE_MS: Final = 10
RESTART_DELAY_S: Final = 1.0

# watchfiles logs every batch of changes at INFO ("1 change detected"): noise at our event rate.
logging.getLogger("watchfiles").setLevel(logging.WARNING)

PathFilter = Callable[[str], bool]


class ChangeWatcher:
    """Calls `on_change` once the watch is set and after each batch of changes in `directory` (non-recursive)
    that `path_filter` keeps (all of them without one), until the `stop` given to run() is set."""

    def __init__(
        self, directory: Path, on_change: Callable[[], None], *, path_filter: PathFilter | None = None
    ) -> None:
        self.directory = directory
        self.path_filter = path_filter
        self._on_change = on_change
        self.running = False  # True while the watch is set
        self.watches = 0  # how many times the watch was set (a new one after each failure or replacement)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; set the watch again when it fails or its directory goes away."""
        failing = False
        while not stop.is_set():
            try:
                await self._watch(stop)
            except Exception as exc:
                if not failing:  # once per outage, not once per retry
                    log.warning(
                        "file watcher unavailable; the caller's poll covers until it is back",
                        extra={"directory": str(self.directory), "error": str(exc)},
                    )
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_DELAY_S)
            else:
                if failing:
                    log.info("file watcher back", extra={"directory": str(self.directory)})
                failing = False
            finally:
                self.running = False

    async def _watch(self, stop: asyncio.Event) -> None:
        """One watch: returns when `stop` is set or the directory is gone; raises when it cannot be set."""
        directory = os.fspath(self.directory)
        wanted = self.path_filter

        def keep(_: Change, path: str) -> bool:
            return path == directory or wanted is None or wanted(path)  # the directory's deletion is always seen

        changes = awatch(
            directory,
            watch_filter=None if wanted is None else keep,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=stop,
            recursive=False,
        )
        waiting: asyncio.Future[set[tuple[Change, str]]] = asyncio.ensure_future(anext(changes))
        try:
            # The generator's first step sets the inotify watch (watchfiles' RustNotify), then waits in a thread;
            # one pass of the event loop runs that step. From then on no change can be missed, and the wake-up
            # below covers whatever changed before the watch existed.
            await asyncio.sleep(0)
            if waiting.done():
                waiting.result()  # failed at once (a missing directory, no inotify): raise it
            self.watches += 1
            self.running = True
            self._on_change()
            while True:
                try:
                    batch = await waiting
                except StopAsyncIteration:
                    return  # `stop` was set
                self._on_change()
                if (Change.deleted, directory) in batch:
                    return  # the watch died with its directory: set it again (run() retries until it is back)
                waiting = asyncio.ensure_future(anext(changes))
        finally:
            waiting.cancel()
            await changes.aclose()


class Wakeup:
    """A change-or-poll wait for a loop on one event loop: `wait(at_most)` returns at once when `set()` was
    called since the last wait (or `clear()`), else at the next `set()`, or after `at_most` seconds (the
    poll that covers a change the watcher missed, or a watcher that is down).

    A future and a timer per wait, not a task as `asyncio.wait_for(event.wait(), timeout)` costs: an idle
    loop that wakes every few hundred milliseconds should not churn tasks.
    """

    def __init__(self) -> None:
        self._pending = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the current wait, or make the next one return at once (call it on the event loop)."""
        self._pending = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        """Forget a `set()` not yet waited for (before work that will see whatever it announced)."""
        self._pending = False

    async def wait(self, at_most: float) -> bool:
        """True when woken by `set()`, False when `at_most` seconds passed first; either way the wake-up is
        used up."""
        if not self._pending:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(at_most, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        woken, self._pending = self._pending, False
        return woken


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
