"""Runs the local pod's containers and restarts the ones that die, as a kubelet does.

Restart back-off doubles from 1 s up to 30 s and resets after a container has run for a minute
(CrashLoopBackOff, shortened). Stopping goes in pod order: the way in first (ambassador), then the
webserver, then the sidecar and the adapter, each given the grace period to flush what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field

import httpx
from podkit.files import write_atomic

from .config import Settings
from .containers import ContainerSpec, pod_containers

log = logging.getLogger("localpod")

STOP_ORDER = ("ambassador", "webserver", "login-sidecar", "adapter")
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0


@dataclass
class Container:
    spec: ContainerSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.containers = {spec.name: Container(spec) for spec in pod_containers(settings)}
        self._stopping = asyncio.Event()

    def prepare(self) -> None:
        """Create the pod's volumes (the run directory) and a session key, like the Secret would."""
        for directory in (
            self.settings.events_file.parent,
            self.settings.volume.root,
            self.settings.session_key_file.parent,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        key_file = self.settings.session_key_file
        if not key_file.exists():
            key_file.parent.chmod(0o700)
            write_atomic(key_file, secrets.token_urlsafe(48).encode())
            key_file.chmod(0o600)

    async def run(self) -> int:
        self.prepare()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop)
        keepers = [asyncio.create_task(self._keep_running(c)) for c in self.containers.values()]
        ready = asyncio.create_task(self._announce_ready())
        await self._stopping.wait()
        ready.cancel()
        log.info("stopping the pod", extra={"order": list(STOP_ORDER)})
        for name in STOP_ORDER:
            await self._stop(self.containers[name])
        await asyncio.gather(*keepers, return_exceptions=True)
        self._write_status()
        log.info("pod stopped")
        return 0

    def request_stop(self) -> None:
        if self._stopping.is_set():
            log.warning("second stop request: killing every container")
            for container in self.containers.values():
                if container.process and container.process.returncode is None:
                    container.process.kill()
        self._stopping.set()

    async def _keep_running(self, container: Container) -> None:
        backoff = BACKOFF_INITIAL
        while not self._stopping.is_set():
            started = time.monotonic()
            container.exited.clear()
            container.process = await asyncio.create_subprocess_exec(
                *container.spec.argv, env=container.spec.env, start_new_session=True
            )
            log.info("container started", extra={"container": container.spec.name, "pid": container.process.pid})
            self._write_status()
            code = await container.process.wait()
            container.exited.set()
            if self._stopping.is_set():
                break
            if time.monotonic() - started > BACKOFF_RESET_AFTER:
                backoff = BACKOFF_INITIAL
            container.restarts += 1
            log.warning(
                "container exited; restarting",
                extra={"container": container.spec.name, "exit_code": code, "restart_in_s": backoff},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)

    async def _stop(self, container: Container) -> None:
        process = container.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.settings.grace_seconds)
        except TimeoutError:
            log.error(
                "container did not stop within the grace period; killing", extra={"container": container.spec.name}
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("container stopped", extra={"container": container.spec.name, "exit_code": process.returncode})

    async def _announce_ready(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as client:
            pending = {c.spec.name: c.spec.health_url for c in self.containers.values()}
            while pending:
                for name, url in list(pending.items()):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(url)).status_code == 200:
                            del pending[name]
                if pending:
                    await asyncio.sleep(0.1)
        url = f"http://{self.settings.ambassador_host}:{self.settings.ambassador_port}/"
        log.info("pod ready", extra={"url": url, "shared_dir": str(self.settings.volume.root)})
        self._write_status(ready=True)

    def _write_status(self, ready: bool | None = None) -> None:
        """`localpod.json`: each container's pid and restart count, for people and tests to read."""
        status = {
            name: {
                "pid": c.process.pid if c.process and c.process.returncode is None else None,
                "restarts": c.restarts,
            }
            for name, c in self.containers.items()
        }
        previous: dict[str, object] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            previous = json.loads(self.settings.status_file.read_text())
        document = {
            "containers": status,
            "ready": ready if ready is not None else bool(previous.get("ready", False)),
            "supervisor_pid": os.getpid(),
        }
        write_atomic(self.settings.status_file, json.dumps(document, indent=2).encode(), durable=False)
