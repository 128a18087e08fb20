"""One pure ASGI middleware for what every response needs: security headers, the request metric, an access log.

Pure ASGI rather than BaseHTTPMiddleware: it does not buffer bodies or add a task per request.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webserver.clientip import ClientIpResolver
from webserver.events import request_id_field
from webserver.metrics import Metrics, method_label

log = logging.getLogger("webserver.access")

SECURITY_HEADERS = {
    # No script at all, and nothing inline: the pages are plain forms.
    "content-security-policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ResponseMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, resolver: ClientIpResolver) -> None:
        self.app = app
        self.metrics = metrics
        self.resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self._account(scope, status, time.perf_counter() - started)

    def _account(self, scope: Scope, status: int, seconds: float) -> None:
        method = method_label(scope["method"])
        self.metrics.http_requests.labels(method=method, status=str(status)).inc()
        path = scope.get("path", "")
        if path in _QUIET_PATHS and not log.isEnabledFor(logging.DEBUG):
            return
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        forwarded = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-forwarded-for"]
        request_id = headers.get(b"x-request-id")
        log.log(
            logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
            "request",
            extra={
                "method": method,
                "path": path[:256],
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client_ip": self.resolver.resolve(client[0] if client else None, forwarded),
                "request_id": request_id_field(request_id.decode("latin-1") if request_id else None),
            },
        )
