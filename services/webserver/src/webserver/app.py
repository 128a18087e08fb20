"""The web application: routes, and the rules that tie a login attempt to exactly one audit event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from podkit.forwarding import parse_ip
from podkit.sharedstore import SharedStore, StoreCollector, StoreUnavailable
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from webserver import pages
from webserver.admission import Overloaded
from webserver.auth import Authenticator
from webserver.clientip import ClientIpResolver
from webserver.config import Settings
from webserver.events import EventType, EventWriteError, EventWriter, Reason, build_event, encode_event
from webserver.inputs import Kind, Malformed, Submission, content_kind, credentials, parse_submission, read_body
from webserver.lockout import Lockout, LockoutPolicy
from webserver.metrics import Metrics
from webserver.middleware import ResponseMiddleware
from webserver.passwords import PasswordChecker
from webserver.sessions import CsrfTokens, RevokedSessions, Session, SessionCodec
from webserver.sharedstate import SharedLockout, SharedRevocations
from webserver.users import UsersStore

log = logging.getLogger("webserver")

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf"
USERS_RELOAD_SECONDS = 1.0
OVERLOAD_RETRY_AFTER = "1"


@dataclass(frozen=True)
class RequestInfo:
    """What the event records about the request, and whether it reached us over TLS."""

    client_ip: str
    user_agent: str | None
    request_id: str | None
    tls: bool


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
            resolver=ClientIpResolver(settings.trusted_proxies),
            authenticator=Authenticator(users, checker, lockout),
            store=store,
        )

    def request_info(self, request: Request) -> RequestInfo:
        peer = request.client.host if request.client else None
        peer_address = parse_ip(peer) if peer else None
        peer_trusted = peer_address is not None and self.resolver.trusted(peer_address)
        forwarded_proto = request.headers.getlist("x-forwarded-proto") if peer_trusted else []
        tls = request.url.scheme == "https" or any(
            part.strip().lower() == "https" for value in forwarded_proto for part in value.split(",")
        )
        return RequestInfo(
            client_ip=self.resolver.resolve(peer, request.headers.getlist("x-forwarded-for")),
            user_agent=request.headers.get("user-agent"),
            request_id=request.headers.get("x-request-id"),
            tls=tls,
        )

    async def record(
        self, event_type: EventType, reason: Reason | None, username: str | None, info: RequestInfo
    ) -> bool:
        """Append the event; False (after logging and counting) when it could not be written."""
        event = build_event(
            event_type=event_type,
            reason=reason,
            username=username,
            client_ip=info.client_ip,
            user_agent=info.user_agent,
            request_id=info.request_id,
            pod=self.settings.pod_name,
        )
        try:
            await self.writer.write(encode_event(event))
        except EventWriteError as exc:
            self.metrics.event_write_errors.inc()
            log.error(
                "cannot write the login event, refusing the request; no event exists for it",
                extra={
                    "path": str(self.settings.events_file),
                    "error": str(exc),
                    "event_type": event_type,
                    "request_id": event["request_id"],
                },
            )
            return False
        self.metrics.events_written.inc()
        return True

    def ready(self) -> tuple[bool, str]:
        if not self.users.loaded:
            return False, f"users not loaded: {self.users.last_error or 'not read yet'}"
        return self.writer.writable()

    async def reload_users_forever(self) -> None:
        while True:
            await asyncio.sleep(USERS_RELOAD_SECONDS)
            self.users.refresh()


def _warn_on_other_params(checker: PasswordChecker, users: Mapping[str, str]) -> None:
    """A hash made with other argon2 parameters takes another time to verify than the dummy: say so."""
    others = sorted(name for name, stored in users.items() if checker.needs_rehash(stored))
    if others:
        log.warning(
            "users whose hash has other argon2 parameters than configured (their timing differs)",
            extra={"users": len(others)},
        )


# --- responses ---------------------------------------------------------------------------------------------


def _set_cookie(response: Response, name: str, value: str, info: RequestInfo, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=info.tls, httponly=True, samesite="strict")


def _csrf_token(services: Services, request: Request) -> tuple[str, bool]:
    """The request's valid csrf cookie, or a new token (True: it must be set)."""
    current = request.cookies.get(CSRF_COOKIE)
    if services.csrf.valid(current):
        assert current is not None
        return current, False
    return services.csrf.new(), True


def _html(
    services: Services, request: Request, info: RequestInfo, status: int, error: str | None = None
) -> HTMLResponse:
    """The login page (with a csrf token, set as a cookie if the client had none)."""
    token, fresh = _csrf_token(services, request)
    response = HTMLResponse(pages.login_page(token, error=error), status_code=status)
    if fresh:
        _set_cookie(response, CSRF_COOKIE, token, info)
    return response


_JSON_ERRORS: dict[int, str] = {
    401: "invalid username or password",
    403: "csrf check failed",
    413: "request body too large",
    415: "content type must be application/json or application/x-www-form-urlencoded",
    422: "body must be a JSON object with string fields username and password",
    503: "login unavailable, try again later",
}
_LOGOUT_UNAVAILABLE = "logout could not be recorded, try again later"
_HTML_ERRORS: dict[int, str] = {
    401: pages.GENERIC_LOGIN_ERROR,
    403: pages.CSRF_ERROR,
    503: pages.UNAVAILABLE_ERROR,
}


def _login_failure(
    services: Services, request: Request, info: RequestInfo, kind: Kind | None, status: int, *, overloaded: bool = False
) -> Response:
    response: Response
    if kind == "form":
        response = _html(services, request, info, status, _HTML_ERRORS.get(status, pages.MALFORMED_ERROR))
    else:
        response = JSONResponse({"error": _JSON_ERRORS.get(status, "bad request")}, status_code=status)
    if status == 503:
        # Overload passes in a second or so (the queue holds ARGON2_MAX_WAITING verifies of tens of ms).
        response.headers["retry-after"] = OVERLOAD_RETRY_AFTER if overloaded else "5"
    return response


def _logout_response(info: RequestInfo, kind: Kind | None, status: int) -> Response:
    """Forms go back to the login page (or see why not, on a csrf failure); JSON gets a status and a message."""
    response: Response
    if kind == "form":
        if status == 403:
            return HTMLResponse(pages.message_page("Sign out failed", pages.CSRF_ERROR), status_code=403)
        if status == 503:
            return HTMLResponse(pages.message_page("Sign out failed", _LOGOUT_UNAVAILABLE), status_code=503)
        response = RedirectResponse("/", status_code=303)
    elif status == 503:
        return JSONResponse({"error": _LOGOUT_UNAVAILABLE}, status_code=503, headers={"retry-after": "5"})
    elif status != 200:
        message = "not logged in" if status == 401 else _JSON_ERRORS.get(status, "bad request")
        return JSONResponse({"error": message}, status_code=status)
    else:
        response = JSONResponse({"status": "logged out"})
    response.delete_cookie(SESSION_COOKIE, path="/", secure=info.tls, httponly=True, samesite="strict")
    return response


async def _session(services: Services, request: Request) -> Session | None:
    """The request's valid session; raises StoreUnavailable when a shared revocation store cannot answer."""
    session = await services.sessions.read(request.cookies.get(SESSION_COOKIE))
    # A user removed from the users file loses their sessions too.
    return session if session is not None and session.username in services.users else None


async def _session_or_none(services: Services, request: Request) -> Session | None:
    """For pages: a session whose revocation cannot be checked (Redis down) is not accepted (fail closed)."""
    try:
        return await _session(services, request)
    except StoreUnavailable:
        services.metrics.sessions_refused_store_down.inc()
        return None


# --- the application ---------------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    services = Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.users.refresh()
        await services.writer.open()
        reloader = asyncio.create_task(services.reload_users_forever())
        log.info(
            "webserver ready to serve",
            extra={"users": len(services.users), "events_file": str(settings.events_file), "pod": settings.pod_name},
        )
        try:
            yield
        finally:
            reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloader
            await services.writer.close()
            if services.store is not None:
                await services.store.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.add_middleware(ResponseMiddleware, metrics=services.metrics, resolver=services.resolver)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        info = services.request_info(request)
        if await _session_or_none(services, request) is not None:
            return RedirectResponse("/welcome", status_code=303)
        return _html(services, request, info, 200)

    @app.get("/style.css")
    async def style() -> Response:
        return PlainTextResponse(pages.STYLE_CSS, media_type="text/css")

    @app.post("/login")
    async def login(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return await _login(request)
        finally:
            services.metrics.login_duration.observe(time.perf_counter() - started)

    async def _login(request: Request) -> Response:
        info = services.request_info(request)
        kind: Kind | None = content_kind(request.headers.get("content-type"))
        username: str | None = None
        reason: Reason | None
        status = 200
        try:
            body = await read_body(request, settings.max_body_bytes, kind)
            submission = parse_submission(request.headers.get("content-type"), body)
            username, password = credentials(submission)
            if not _csrf_ok(request, submission):
                reason, status = "csrf_failed", 403
            else:
                try:
                    reason = await services.authenticator.authenticate(username, password, client=info.client_ip)
                    status = 200 if reason is None else 401
                except StoreUnavailable:  # the lockout cannot be counted: fail closed, for every name alike
                    reason, status = "store_unavailable", 503
        except Overloaded:
            reason, status = "overloaded", 503
        except Malformed as exc:
            reason, status, kind, username = "malformed_request", exc.status, exc.kind or kind, exc.username
        event_type: EventType = "login.success" if reason is None else "login.failure"
        if not await services.record(event_type, reason, username, info):
            reason, status = "audit_unavailable", 503
        services.metrics.login_attempts.labels(
            outcome="success" if reason is None else "failure", reason=reason or "none"
        ).inc()
        if reason is not None:
            return _login_failure(services, request, info, kind, status, overloaded=reason == "overloaded")
        assert username is not None
        session, token = services.sessions.issue(username)
        response: Response
        if kind == "form":
            response = RedirectResponse("/welcome", status_code=303)
        else:
            response = JSONResponse({"status": "logged in", "username": username, "expires_at": session.expires_at})
        _set_cookie(response, SESSION_COOKIE, token, info, max_age=settings.session_ttl_seconds)
        # A new csrf token after login: one planted before it is of no use afterwards.
        _set_cookie(response, CSRF_COOKIE, services.csrf.new(), info)
        return response

    def _csrf_ok(request: Request, submission: Submission) -> bool:
        """Forms need the double-submit token; JSON needs none (a cross-site page cannot send it unasked)."""
        if submission.kind == "json":
            return True
        return services.csrf.matches(request.cookies.get(CSRF_COOKIE), submission.text("csrf"))

    @app.get("/welcome", response_class=HTMLResponse)
    async def welcome(request: Request) -> Response:
        session = await _session_or_none(services, request)
        if session is None:
            return RedirectResponse("/", status_code=303)
        info = services.request_info(request)
        token, fresh = _csrf_token(services, request)
        response = HTMLResponse(pages.welcome_page(session.username, token))
        if fresh:
            _set_cookie(response, CSRF_COOKIE, token, info)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        info = services.request_info(request)
        kind: Kind | None = content_kind(request.headers.get("content-type"))
        reason: Reason | None = None
        status = 200
        session: Session | None = None
        store_down = False
        try:
            session = await _session(services, request)
        except StoreUnavailable:
            store_down = True
            session = services.sessions.decode(request.cookies.get(SESSION_COOKIE))
        try:
            body = await read_body(request, settings.max_body_bytes, kind)
            submission = parse_submission(request.headers.get("content-type"), body, empty_json_ok=True)
            if not _csrf_ok(request, submission):
                reason, status = "csrf_failed", 403
            elif store_down:
                reason, status = "store_unavailable", 503
            elif session is None:
                reason, status = "no_session", 401
            else:
                try:
                    await services.sessions.revoked.revoke(session)
                except StoreUnavailable:  # not recorded: the cookie would still work on the other replicas
                    reason, status = "store_unavailable", 503
        except Malformed as exc:
            reason, status, kind = "malformed_request", exc.status, exc.kind or kind
        # Logging out takes access away, so it happens even when its event cannot be written.
        await services.record("logout", reason, session.username if session else None, info)
        outcome = "success" if reason is None else "failure"
        services.metrics.logouts.labels(outcome=outcome, reason=reason or "none").inc()
        return _logout_response(info, kind, status)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, detail = services.ready()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "detail": detail}, status_code=200 if ready else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
