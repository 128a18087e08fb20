"""The login routes, and the rules that tie a login attempt to exactly one audit event.

Every POST /login and POST /logout writes one event, whatever its outcome; a login whose event cannot be
written is refused (503, reason audit_unavailable), a logout happens anyway.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from podkit.sharedstore import StoreUnavailable
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from webserver import pages
from webserver.admission import Overloaded
from webserver.events import EventType, Reason
from webserver.inputs import Kind, Malformed, Submission, content_kind, credentials, parse_submission, read_body
from webserver.responses import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    login_failure,
    login_page,
    logout_response,
    set_cookie,
)
from webserver.services import Services, services_of
from webserver.sessions import Session

router = APIRouter()


async def _session(services: Services, request: Request) -> Session | None:
    """The request's valid session; raises StoreUnavailable when a shared revocation store cannot answer."""
    session = await services.sessions.read(request.cookies.get(SESSION_COOKIE))
    # A user removed from the users file loses their sessions too.
    return session if session is not None and session.username in services.users else None


async def _session_or_none(services: Services, request: Request) -> Session | None:
    """For pages: a session whose revocation cannot be checked (Redis down) is not accepted (fail closed)."""
    try:
        return await _session(services, request)
    except StoreUnavailable:  # counted by the store: shared_store_errors_total{use="revocation"}
        return None


def _csrf_ok(services: Services, request: Request, submission: Submission) -> bool:
    """Forms need the double-submit token; JSON needs none (a cross-site page cannot send it unasked)."""
    if submission.kind == "json":
        return True
    return services.csrf.matches(request.cookies.get(CSRF_COOKIE), submission.text("csrf"))


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    services = services_of(request)
    info = services.request_info(request)
    if await _session_or_none(services, request) is not None:
        return RedirectResponse("/welcome", status_code=303)
    return login_page(services.csrf, request, info, 200)


@router.get("/style.css")
async def style() -> Response:
    return PlainTextResponse(pages.STYLE_CSS, media_type="text/css")


@router.post("/login")
async def login(request: Request) -> Response:
    services = services_of(request)
    started = time.perf_counter()
    try:
        return await _login(services, request)
    finally:
        services.metrics.login_duration.observe(time.perf_counter() - started)


async def _login(services: Services, request: Request) -> Response:
    settings = services.settings
    info = services.request_info(request)
    kind: Kind | None = content_kind(request.headers.get("content-type"))
    username: str | None = None
    reason: Reason | None
    status = 200
    try:
        body = await read_body(request, settings.max_body_bytes, kind)
        submission = parse_submission(request.headers.get("content-type"), body)
        username, password = credentials(submission)
        if not _csrf_ok(services, request, submission):
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
    if not await services.audit.record(event_type, reason, username, info):
        reason, status = "audit_unavailable", 503
    services.metrics.login_attempts.labels(
        outcome="success" if reason is None else "failure", reason=reason or "none"
    ).inc()
    if reason is not None:
        return login_failure(services.csrf, request, info, kind, status, overloaded=reason == "overloaded")
    assert username is not None
    session, token = services.sessions.issue(username)
    response: Response
    if kind == "form":
        response = RedirectResponse("/welcome", status_code=303)
    else:
        response = JSONResponse({"status": "logged in", "username": username, "expires_at": session.expires_at})
    set_cookie(response, SESSION_COOKIE, token, info, max_age=settings.session_ttl_seconds)
    # A new csrf token after login: one planted before it is of no use afterwards.
    set_cookie(response, CSRF_COOKIE, services.csrf.new(), info)
    return response


@router.get("/welcome", response_class=HTMLResponse)
async def welcome(request: Request) -> Response:
    services = services_of(request)
    session = await _session_or_none(services, request)
    if session is None:
        return RedirectResponse("/", status_code=303)
    info = services.request_info(request)
    token, fresh = csrf_token(services.csrf, request)
    response = HTMLResponse(pages.welcome_page(session.username, token))
    if fresh:
        set_cookie(response, CSRF_COOKIE, token, info)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    services = services_of(request)
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
        body = await read_body(request, services.settings.max_body_bytes, kind)
        submission = parse_submission(request.headers.get("content-type"), body, empty_json_ok=True)
        if not _csrf_ok(services, request, submission):
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
    await services.audit.record("logout", reason, session.username if session else None, info)
    outcome = "success" if reason is None else "failure"
    services.metrics.logouts.labels(outcome=outcome, reason=reason or "none").inc()
    return logout_response(info, kind, status)
