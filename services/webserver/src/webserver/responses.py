"""The answers of the login and logout routes: the form gets pages, JSON clients get a status and a message.

Cookies are HttpOnly, SameSite=Strict, and Secure when the request came over TLS. Failure messages never
tell which check failed (the event records it).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from webserver import pages
from webserver.audit import RequestInfo
from webserver.inputs import Kind
from webserver.sessions import CsrfTokens

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf"
OVERLOAD_RETRY_AFTER = "1"

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


def set_cookie(response: Response, name: str, value: str, info: RequestInfo, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=info.tls, httponly=True, samesite="strict")


def csrf_token(csrf: CsrfTokens, request: Request) -> tuple[str, bool]:
    """The request's valid csrf cookie, or a new token (True: it must be set)."""
    current = request.cookies.get(CSRF_COOKIE)
    if csrf.valid(current):
        assert current is not None
        return current, False
    return csrf.new(), True


def login_page(
    csrf: CsrfTokens, request: Request, info: RequestInfo, status: int, error: str | None = None
) -> HTMLResponse:
    """The login page (with a csrf token, set as a cookie if the client had none)."""
    token, fresh = csrf_token(csrf, request)
    response = HTMLResponse(pages.login_page(token, error=error), status_code=status)
    if fresh:
        set_cookie(response, CSRF_COOKIE, token, info)
    return response


def login_failure(
    csrf: CsrfTokens,
    request: Request,
    info: RequestInfo,
    kind: Kind | None,
    status: int,
    *,
    overloaded: bool = False,
) -> Response:
    response: Response
    if kind == "form":
        response = login_page(csrf, request, info, status, _HTML_ERRORS.get(status, pages.MALFORMED_ERROR))
    else:
        response = JSONResponse({"error": _JSON_ERRORS.get(status, "bad request")}, status_code=status)
    if status == 503:
        # Overload passes in a second or so (the queue holds ARGON2_MAX_WAITING verifies of tens of ms).
        response.headers["retry-after"] = OVERLOAD_RETRY_AFTER if overloaded else "5"
    return response


def logout_response(info: RequestInfo, kind: Kind | None, status: int) -> Response:
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
