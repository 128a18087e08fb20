"""The wiring: every part the routes use, built once from the settings, and its start and stop.

The routes find it on `app.state.services` (`services_of`), as tests do; with REDIS_URL the lockout and the
session revocations are shared with the other replicas, otherwise they live in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from podkit.sharedstore import SharedStore, StoreCollector
from starlette.requests import Request

from webserver.audit import AuditRecorder, RequestInfo, request_info
from webserver.auth import Authenticator
from webserver.clientip import ClientIpResolver
from webserver.config import Settings
from webserver.eventwriter import EventWriter
from webserver.lockout import Lockout, LockoutPolicy
from webserver.metrics import Metrics
from webserver.passwords import PasswordChecker
from webserver.sessions import CsrfTokens, RevokedSessions, SessionCodec
from webserver.sharedstate import SharedLockout, SharedRevocations
from webserver.users import UsersStore

log = logging.getLogger("webserver")

USERS_RELOAD_SECONDS = 1.0


@dataclass
class Services:
    """Everything the routes use; on `app.state.services` so tests can reach it."""

    settings: Settings
    metrics: Metrics
    users: UsersStore
    checker: PasswordChecker
    lockout: LockoutPolicy
    sessions: SessionCodec
    csrf: CsrfTokens
    writer: EventWriter
    audit: AuditRecorder
    resolver: ClientIpResolver
    authenticator: Authenticator
    store: SharedStore | None = None  # REDIS_URL: revocations and lockout shared with the other replicas

    @classmethod
    def build(cls, settings: Settings) -> Services:
        metrics = Metrics()
        checker = PasswordChecker(settings.argon2, settings.argon2.concurrency or None)
        metrics.verifies_waiting.set_function(lambda: checker.admission.waiting)
        users = UsersStore(
            settings.users_file,
            on_change=lambda users: _warn_on_other_params(checker, users),
            on_error=metrics.users_reload_errors.inc,
        )
        store: SharedStore | None = None
        lockout: LockoutPolicy
        if settings.shared_store is not None:
            store = SharedStore(settings.shared_store, "webserver")
            metrics.registry.register(StoreCollector(store, "loginpod_webserver_"))
            lockout = SharedLockout(
                store, settings.lockout_threshold, settings.lockout_window_seconds, settings.lockout_seconds
            )
            sessions = SessionCodec(
                settings.session_key, settings.session_ttl_seconds, revoked=SharedRevocations(store)
            )
        else:
            lockout = Lockout(settings.lockout_threshold, settings.lockout_window_seconds, settings.lockout_seconds)
            revoked = RevokedSessions()
            sessions = SessionCodec(settings.session_key, settings.session_ttl_seconds, revoked=revoked)
            metrics.sessions_revoked.set_function(lambda: len(revoked))
        writer = EventWriter(
            settings.events_file,
            max_bytes=settings.events_file_max_bytes,
            keep=settings.events_file_keep,
            keep_max=settings.events_file_keep_max,
            reader_checkpoint=settings.sidecar_tail_checkpoint,
            on_rotate=metrics.events_file_rotations.inc,
            on_unread_deleted=metrics.events_unread_deleted.inc,
        )
        metrics.users_loaded.set_function(lambda: len(users))
        return cls(
            settings=settings,
            metrics=metrics,
            users=users,
            checker=checker,
            lockout=lockout,
            sessions=sessions,
            csrf=CsrfTokens(settings.session_key),
            writer=writer,
            audit=AuditRecorder(writer, metrics, pod=settings.pod_name, events_file=settings.events_file),
            resolver=ClientIpResolver(settings.trusted_proxies),
            authenticator=Authenticator(users, checker, lockout),
            store=store,
        )

    def request_info(self, request: Request) -> RequestInfo:
        return request_info(request, self.resolver)

    def ready(self) -> tuple[bool, str]:
        if not self.users.loaded:
            return False, f"users not loaded: {self.users.last_error or 'not read yet'}"
        return self.writer.writable()

    async def reload_users_forever(self) -> None:
        while True:
            await asyncio.sleep(USERS_RELOAD_SECONDS)
            self.users.refresh()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan: users loaded, events file open and the users reloader running until the end."""
        self.users.refresh()
        await self.writer.open()
        reloader = asyncio.create_task(self.reload_users_forever())
        log.info(
            "webserver ready to serve",
            extra={
                "users": len(self.users),
                "events_file": str(self.settings.events_file),
                "pod": self.settings.pod_name,
            },
        )
        try:
            yield
        finally:
            reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloader
            await self.writer.close()
            if self.store is not None:
                await self.store.aclose()


def services_of(request: Request) -> Services:
    """The request's app's Services (create_app puts them on `app.state.services`)."""
    services: Services = request.app.state.services
    return services


def _warn_on_other_params(checker: PasswordChecker, users: Mapping[str, str]) -> None:
    """A hash made with other argon2 parameters takes another time to verify than the dummy: say so."""
    others = sorted(name for name, stored in users.items() if checker.needs_rehash(stored))
    if others:
        log.warning(
            "users whose hash has other argon2 parameters than configured (their timing differs)",
            extra={"users": len(others)},
        )
