"""The ambassador as a raw ASGI app: refuse what must not pass, answer the probes, stream the rest upstream.

Raw ASGI, not Starlette: this code is on every request's path and every microsecond it spends is taken
from the upstream on the same two cores. Per request it makes one pass over the headers, builds one
httpx.Request, streams both bodies, and leaves one metrics update and one access-log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import httpx

from ambassador.accesslog import AccessLog
from ambassador.asgi import Receive, Scope, Send
from ambassador.config import Settings
from ambassador.errors import send_error, send_json
from ambassador.headers import (
    ForwardedRequest,
    TrustedProxies,
    absolute_target_allowed,
    forward_request_headers,
    forward_response_headers,
)
from ambassador.metrics import Metrics
from ambassador.protocol import INFORMATIONAL, REQUEST_TARGET
from ambassador.ratelimit import LoginRateLimiter, RateLimiter, retry_after
from ambassador.upstream import Upstream, classify

logger = logging.getLogger("ambassador")

# Not an HTTP status: the client went away before the response (nginx's convention), for logs and metrics.
CLIENT_CLOSED = 499
READY_CACHE_SECONDS = 1.0
LOCAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# The methods forwarded, for Allow (RFC 9110 section 15.5.6); CONNECT (not a forward proxy) and TRACE (it
# would echo cookies and credentials to scripts: "cross-site tracing") are refused with 405, as nginx does.
FORWARDED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


class ResponseAborted(Exception):
    """The upstream failed after the response had started: the client's connection is cut."""

    def __init__(self, status: int, sent: int) -> None:
        super().__init__(f"upstream response aborted after {sent} body bytes")
        self.status = status
        self.sent = sent


class RequestBody(httpx.AsyncByteStream):
    """The client's body as an httpx stream, read from ASGI `receive` as the upstream takes it.

    Counts bytes against MAX_BODY_BYTES (chunked bodies have no Content-Length to check up front) and
    records why it stopped, because transports may wrap the exception it raises.
    """

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self.received = 0
        self.too_large = False
        self.disconnected = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        receive = self._receive
        while True:
            message = await receive()
            if message["type"] != "http.request":
                self.disconnected = True
                raise ClientDisconnected()
            body = message.get("body", b"")
            if body:
                self.received += len(body)
                if self.received > self._limit:
                    self.too_large = True
                    raise BodyTooLarge()
                yield body
            if not message.get("more_body", False):
                return


class _Informational:
    """Passes the upstream's 1xx responses (103 Early Hints...) on to the client, as a proxy must (RFC 9110
    section 15.2), minus hop-by-hop headers. Not 100 Continue: the ambassador answers Expect itself, so the
    upstream never asked for one; not 101: no protocol switch crosses the ambassador."""

    __slots__ = ("_write",)

    def __init__(self, write: Callable[[int, list[tuple[bytes, bytes]]], None]) -> None:
        self._write = write

    def __call__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if status > 101:
            self._write(status, forward_response_headers(headers, None)[0])


class ReadinessCache:
    """The upstream's readiness, asked at most once per READY_CACHE_SECONDS whatever the probe rate."""

    def __init__(self, check: Callable[[], Awaitable[bool]], ttl: float = READY_CACHE_SECONDS) -> None:
        self._check = check
        self._ttl = ttl
        self._value = False
        self._expires = 0.0
        self._pending: asyncio.Future[bool] | None = None

    async def get(self) -> bool:
        if time.monotonic() < self._expires:
            return self._value
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> bool:
        try:
            self._value = await self._check()
            self._expires = time.monotonic() + self._ttl
            return self._value
        finally:
            self._pending = None


class Ambassador:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        metrics: Metrics,
        access_log: AccessLog | None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.metrics = metrics
        self.access_log = access_log
        self.limiter: RateLimiter = limiter or LoginRateLimiter(
            settings.login_rate_per_minute, settings.login_burst, settings.login_max_clients
        )
        self.readiness = ReadinessCache(upstream.ready)
        self._trusted = TrustedProxies(settings.trusted_proxies)
        self._login_paths = frozenset(path.rstrip("/") or "/" for path in settings.login_paths)
        self._max_body = settings.max_body_bytes
        self._max_header = settings.max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        start = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        method: str = scope["method"]
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        version: bytes = b"1.1" if scope["http_version"] == "1.1" else scope["http_version"].encode()
        head = forward_request_headers(
            scope["headers"], peer=peer, scheme=scope["scheme"], trusted=self._trusted, version=version
        )
        status, sent, upstream_status = 500, 0, None
        try:
            status, sent, upstream_status = await self._handle(scope, receive, send, method, head)
        except ResponseAborted as exc:
            status, sent, upstream_status = exc.status, exc.sent, exc.status
            raise  # uvicorn closes the connection of an app that fails after starting its response
        finally:
            metrics.in_flight -= 1
            duration = time.perf_counter() - start
            metrics.request_done(method, status, duration)
            if self.access_log is not None:
                self.access_log.log(
                    method, scope["path"], status, sent, duration, head.request_id, head.client_ip, upstream_status
                )

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, method: str, head: ForwardedRequest
    ) -> tuple[int, int, int | None]:
        """Answers one request; returns (status, body bytes sent, upstream status or None)."""
        request_id = head.request_id
        is_head = method == "HEAD"
        if head.header_bytes > self._max_header:
            return 431, await send_error(send, 431, "request headers too large", request_id, head=is_head), None
        if head.problem is not None:
            return 400, await send_error(send, 400, head.problem, request_id, head=is_head), None
        if method in REFUSED_METHODS:
            headers = [(b"allow", FORWARDED_METHODS)]
            return 405, await send_error(send, 405, f"{method} is not supported", request_id, headers), None
        extensions = scope.get("extensions")
        if extensions and REQUEST_TARGET in extensions:
            target = extensions[REQUEST_TARGET]["target"]
            if target == b"*" and method == "OPTIONS":
                return await self._options_asterisk(send, request_id)
            if not target.startswith((b"http://", b"https://")) or not absolute_target_allowed(target, head.host):
                error = "request target must be a path on this host (this is not a forward proxy)"
                return 400, await send_error(send, 400, error, request_id, head=is_head), None
        path: str = scope["path"]
        if path in LOCAL_PATHS:
            return await self._local(path, method, send, request_id)
        if head.host is None:
            if scope["http_version"] == "1.1":
                return 400, await send_error(send, 400, "missing Host header", request_id, head=is_head), None
            head.headers.insert(0, (b"host", self.upstream.netloc))
        if head.content_length is not None and head.content_length > self._max_body:
            return await self._too_large(send, request_id)
        if method == "POST" and (path.rstrip("/") or "/") in self._login_paths:
            wait = await self.limiter.take(head.client_ip)
            if wait > 0.0:
                self.metrics.rate_limited += 1
                headers = [(b"retry-after", retry_after(wait))]
                return 429, await send_error(send, 429, "too many login attempts", request_id, headers), None
        return await self._forward(scope, receive, send, method, head)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, method: str, head: ForwardedRequest
    ) -> tuple[int, int, int | None]:
        request_id = head.request_id
        body: RequestBody | None = None
        headers = head.headers
        if head.chunked:
            body = RequestBody(receive, self._max_body)
            headers.append((b"transfer-encoding", b"chunked"))
        elif head.content_length:
            body = RequestBody(receive, self._max_body)
        query: bytes = scope["query_string"]
        target: bytes = scope["raw_path"] + b"?" + query if query else scope["raw_path"]
        extensions = scope.get("extensions")
        writer = extensions.get(INFORMATIONAL) if extensions else None  # HTTP/1.1 clients only
        informational = _Informational(writer["send"]) if writer else None
        try:
            response = await self.upstream.send(self.upstream.request(method, target, headers, body, informational))
        except Exception as exc:
            return await self._failed(exc, body, send, request_id, method == "HEAD")

        upstream_status = response.status_code
        # The transport's stream itself: Response.aiter_raw() would add a re-chunker and a context per chunk.
        stream = cast(httpx.AsyncByteStream, response.stream)
        version = response.extensions.get("http_version", b"HTTP/1.1")[5:]
        headers, length = forward_response_headers(response.headers.raw, request_id, version)
        if method == "HEAD" or upstream_status in (204, 304):
            length = 0
        sent = 0
        finished = False
        try:
            await send({"type": "http.response.start", "status": upstream_status, "headers": headers})
            async for chunk in stream:
                sent += len(chunk)
                # With a Content-Length, the chunk that completes it ends the response: one send() less.
                finished = length is not None and sent >= length
                await send({"type": "http.response.body", "body": chunk, "more_body": not finished})
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            # Too late for an error response: cut the client's connection so it cannot take a truncated
            # body for a whole one.
            self.metrics.upstream_error(failure.kind)
            logger.warning(
                "upstream failed during the response body",
                extra={"request_id": request_id.decode(), "kind": failure.kind, "error": str(exc)},
            )
            raise ResponseAborted(upstream_status, sent) from exc
        finally:
            await stream.aclose()
        if not finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return upstream_status, sent, upstream_status

    async def _failed(
        self, exc: Exception, body: RequestBody | None, send: Send, request_id: bytes, is_head: bool
    ) -> tuple[int, int, int | None]:
        """The upstream exchange failed before a response: say why, as JSON."""
        if body is not None and body.too_large:
            return await self._too_large(send, request_id)
        if body is not None and body.disconnected:
            return CLIENT_CLOSED, 0, None
        failure = classify(exc)
        if failure is None:
            raise exc
        self.metrics.upstream_error(failure.kind)
        logger.warning(
            "upstream request failed",
            extra={"request_id": request_id.decode(), "kind": failure.kind, "error": str(exc) or type(exc).__name__},
        )
        return failure.status, await send_error(send, failure.status, failure.error, request_id, head=is_head), None

    @staticmethod
    async def _options_asterisk(send: Send, request_id: bytes) -> tuple[int, int, int | None]:
        """`OPTIONS *`: a question about the server itself, answered here (RFC 9110 section 9.3.7)."""
        headers = [(b"allow", FORWARDED_METHODS), (b"content-length", b"0"), (b"x-request-id", request_id)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 200, 0, None

    @staticmethod
    async def _too_large(send: Send, request_id: bytes) -> tuple[int, int, int | None]:
        # The rest of the body is not read: closing beats making the client send it for nothing.
        error = "request body too large"
        return 413, await send_error(send, 413, error, request_id, [(b"connection", b"close")]), None

    async def _local(self, path: str, method: str, send: Send, request_id: bytes) -> tuple[int, int, int | None]:
        """/healthz, /readyz and /metrics: the ambassador's own, never forwarded."""
        if method not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD")]
            return 405, await send_error(send, 405, "method not allowed", request_id, headers), None
        is_head = method == "HEAD"
        if path == "/healthz":
            return 200, await send_json(send, 200, {"status": "ok"}, request_id, head=is_head), None
        if path == "/readyz":
            if await self.readiness.get():
                return 200, await send_json(send, 200, {"status": "ready"}, request_id, head=is_head), None
            return 503, await send_error(send, 503, "upstream not ready", request_id, head=is_head), None
        body = self.metrics.render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", METRICS_CONTENT_TYPE),
                    (b"content-length", b"%d" % len(body)),
                    (b"x-request-id", request_id),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if is_head else body})
        return 200, 0 if is_head else len(body), None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.upstream.aclose()
                await self.limiter.aclose()
                if self.access_log is not None:
                    self.access_log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return
