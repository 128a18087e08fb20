"""An httpx transport for plain-HTTP/1.1 upstreams: asyncio protocols, a keep-alive pool, httptools parsing.

Why it exists: on our 2 cores httpx's default transport (httpcore over anyio streams) costs about 0.7 ms
of CPU per request and httpx-aiohttp's about 0.3 ms, while the ambassador's whole budget is about
0.25 ms per request. This one does only what a reverse proxy to an upstream inside the pod needs: HTTP/1.1
over TCP, no TLS, no proxy, no HTTP/2, no cookies or redirects (httpx's client layer owns those). It is
an ordinary `httpx.AsyncBaseTransport`: httpx.Request in, httpx.Response out, httpx exceptions.

What it honours: the `timeout` extension (connect, read, write, pool) and the `target` extension (the
request target, so callers can reuse one parsed httpx.URL for every request); `httpx.Limits`
(max_connections, max_keepalive_connections, keepalive_expiry).

Framing follows the request headers as given: Content-Length means a body of exactly that size,
Transfer-Encoding: chunked means chunked, neither means no body.

What it refuses to do with a response, because a proxy relays exactly one response per request:
- replay: a request that failed on a reused connection before any response byte is sent again on a new
  connection only if it is idempotent (RFC 9110 section 9.2.2) and its body can be sent again, or if the
  connection was found closed before a byte of it was written (RFC 9112 section 9.3.1);
- mix: bytes after the end of a response (after a 204/304, after Content-Length bytes, after the last
  chunk) are discarded and the connection is not reused; trailer fields are dropped, never merged into
  the headers (RFC 9110 section 6.5.1);
- buffer without bound: a response head (1xx heads included) over MAX_RESPONSE_HEAD_BYTES is an error.
1xx responses (103 Early Hints...) go to the `informational` extension's callable, if the request has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httptools
import httpx

logger = logging.getLogger("ambassador.upstream")

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0)
# Response body bytes buffered per connection before reading from the upstream pauses.
HIGH_WATER = 256 * 1024
# The response head, 1xx heads included, at most (nginx's proxy_buffer_size is 4-8 KiB; Envoy's limit is 60 KiB).
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
# RFC 9110 section 9.2.2: a request with one of these methods may be sent again after a failure.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
Informational = Callable[[int, list[tuple[bytes, bytes]]], None]


class _Discard(Exception):
    """Raised in a parser callback to stop httptools reading bytes that must not be parsed."""


class NotSent(httpx.TransportError):
    """The connection was found closed before a byte of the request was written: safe to send elsewhere."""


class HttptoolsTransport(httpx.AsyncBaseTransport):
    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._pools: dict[tuple[str, int], _Pool] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.TransportError("transport is closed")
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"only http:// URLs are supported, got {url.scheme!r}")
        host, port = url.host, url.port or 80
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = _Pool(host, port, self._limits)

        extensions = request.extensions
        timeouts: dict[str, float | None] = extensions.get("timeout") or {}
        target: bytes = extensions.get("target") or url.raw_path
        head, length, chunked = _encode_head(request.method, target, request.headers.raw, url.netloc)
        stream = request.stream if (chunked or length) else None
        # Sent again after a failure only if the upstream may safely get it twice (see the module doc).
        replayable = request.method in IDEMPOTENT and (stream is None or isinstance(stream, httpx.ByteStream))
        informational: Informational | None = extensions.get("informational")

        head_request = request.method == "HEAD"
        read_timeout = timeouts.get("read")
        for attempt in (1, 2):
            conn = pool.take_idle() or await pool.acquire(timeouts.get("connect"), timeouts.get("pool"))
            reused = conn.requests > 0
            try:
                conn.begin(head_request, informational)
                if conn.lost:
                    raise NotSent("upstream closed the connection before the request was written")
                if stream is None:
                    conn.write(head)
                    conn.body_sent = True
                else:
                    await conn.send_body(head, stream, length, chunked, timeouts.get("write"))
                while not conn.head_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(read_timeout, httpx.ReadTimeout)
            except httpx.TransportError as exc:
                # The upstream closed a kept-alive connection as we reused it: try once on a new one, if
                # the request never left or the upstream may get it twice.
                may_resend = isinstance(exc, NotSent) or (replayable and not isinstance(exc, httpx.TimeoutException))
                stale = reused and not conn.received_any and attempt == 1 and may_resend
                pool.discard(conn)
                if stale:
                    continue
                raise
            except BaseException:
                pool.discard(conn)
                raise
            break

        extensions_out = {"http_version": conn.http_version, "reason_phrase": conn.reason}
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_ResponseStream(conn, pool, read_timeout),
            extensions=extensions_out,
            request=request,
        )

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _encode_head(
    method: str, target: bytes, headers: list[tuple[bytes, bytes]], netloc: bytes
) -> tuple[bytes, int | None, bool]:
    """The request head, and the body framing its headers announce (Content-Length, chunked)."""
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    length: int | None = None
    chunked = False
    has_host = False
    for name, value in headers:
        if b"\n" in value or b"\r" in value or b"\n" in name or b"\r" in name:
            raise httpx.LocalProtocolError(f"line break in header {name!r}")
        parts += (name, b": ", value, b"\r\n")
        lowered = name.lower()
        if lowered == b"content-length":
            if not value.isdigit():
                raise httpx.LocalProtocolError(f"malformed Content-Length {value!r}")
            length = int(value)
        elif lowered == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lowered == b"host":
            has_host = True
    if not has_host:
        parts += (b"host: ", netloc, b"\r\n")
    parts.append(b"\r\n")
    if chunked:
        length = None
    return b"".join(parts), length, chunked


class _Connection(asyncio.Protocol):
    """One upstream connection: writes a request, parses the response, one exchange at a time."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        self.lost = False
        self.error: Exception | None = None
        self.requests = 0
        self.expires_at = 0.0
        self.dropped = False
        self._reset()

    def _reset(self) -> None:
        self.active = False
        self.received_any = False
        self.body_sent = False
        self.head_request = False
        self.head_done = False
        self.complete = False
        self.until_close = True
        self.keep_alive = False
        self.status = 0
        self.http_version = b"HTTP/1.1"
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.head_bytes = 0  # response head bytes parsed so far, 1xx heads included
        self.raw_head_bytes = 0  # bytes received while the head was still incomplete
        self.extra = False  # bytes came after the end of the response: discarded, connection not reused
        self.informational: Informational | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.head_done and not self.complete and self.until_close and exc is None:
            self.complete = True  # a body delimited by the end of the connection
        elif self.error is None:
            self.error = httpx.RemoteProtocolError("upstream closed the connection")
        self._wake()
        if not self.active:
            self._pool.forget_idle(self)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            self.close()  # an idle connection has nothing to say
            return
        self.received_any = True
        if self.extra:
            return  # after the end of the response: discarded
        head_pending = not self.head_done
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:
                self._discard_extra()  # garbage after a whole response: the response stands
            elif self.error is None:
                self.error = httpx.RemoteProtocolError(f"malformed response from upstream: {exc}")
            self.close()
        else:
            if head_pending and not self.head_done:
                # a head still incomplete: httptools holds its bytes, so count them as they come
                self.raw_head_bytes += len(data)
                if self.raw_head_bytes > MAX_RESPONSE_HEAD_BYTES:
                    self._head_too_large()
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:
            self._discard_extra()  # a second response to one request
            raise _Discard()
        self.headers = []
        self.until_close = True

    def on_status(self, status: bytes) -> None:
        self.reason += status
        self.head_bytes += len(status) + 15

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_RESPONSE_HEAD_BYTES:
            self._head_too_large()
            raise _Discard()
        if self.head_done:
            return  # a trailer field: dropped, never merged into the headers (RFC 9110 section 6.5.1)
        self.headers.append((name, value))
        if len(name) in (14, 17):
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                self.until_close = False

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # informational (103 Early Hints...): passed on if the caller wants it; the real response follows
            if self.informational is not None:
                self.informational(status, self.headers)
            self.reason = b""
            return
        self.status = status
        self.http_version = b"HTTP/" + self._parser.get_http_version().encode("ascii")
        self.head_done = True
        self.keep_alive = self._parser.should_keep_alive()  # llhttp forgets it once the message is complete
        if self.head_request or status in (204, 304):
            self.until_close = False
        if self.head_request:
            self.complete = True  # httptools would wait for the body Content-Length announces

    def on_body(self, body: bytes) -> None:
        if self.complete:
            self._discard_extra()  # bytes after a HEAD response, read by httptools as the body it announced
            raise _Discard()
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True

    def _discard_extra(self) -> None:
        if not self.extra:
            self.extra = True
            logger.warning("upstream sent bytes after the end of its response: discarded, connection closed")

    def _head_too_large(self) -> None:
        if self.error is None:
            self.error = httpx.RemoteProtocolError(f"upstream response head over {MAX_RESPONSE_HEAD_BYTES} bytes")
        self.close()

    # used by the transport
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, seconds: float | None, timeout_error: type[httpx.TimeoutException]) -> None:
        """Until the protocol has news (data, end, error), or `timeout_error` after `seconds`.

        A timer handle rather than asyncio.timeout(): this runs for nearly every request.
        """
        waiter = self._waiter = self._loop.create_future()
        timer = None if seconds is None else self._loop.call_later(seconds, self._time_out, waiter, timeout_error)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _time_out(self, waiter: asyncio.Future[None], timeout_error: type[httpx.TimeoutException]) -> None:
        if not waiter.done():
            self.error = timeout_error("upstream timed out")
            waiter.set_exception(self.error)
            self.close()

    def usable(self, now: float) -> bool:
        return not self.lost and not self.dropped and self.error is None and now < self.expires_at

    def begin(self, head_request: bool, informational: Informational | None = None) -> None:
        """A new exchange on this connection."""
        self._reset()
        self.active = True
        self.head_request = head_request
        self.informational = informational
        self.requests += 1

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    async def send_body(
        self, head: bytes, stream: Any, length: int | None, chunked: bool, write_timeout: float | None
    ) -> None:
        """Writes the head and the body from `stream`, framed as announced; the head leaves with the first chunk."""
        transport = self._transport
        assert transport is not None
        pending: bytes | None = head
        sent = 0
        async for chunk in stream:
            if not chunk:
                continue
            if self.lost or self.head_done:
                if self.head_done:
                    return  # the upstream answered before reading the whole body: fine, not reusable
                raise self.error or httpx.WriteError("upstream closed the connection")
            sent += len(chunk)
            if chunked:
                data: list[bytes] = [b"%x\r\n" % len(chunk), chunk, b"\r\n"]
            elif length is not None and sent > length:
                raise httpx.LocalProtocolError("request body longer than its Content-Length")
            else:
                data = [chunk]
            if pending is not None:
                data.insert(0, pending)
                pending = None
            transport.writelines(data)
            while self._write_paused and not (self.lost or self.head_done):
                await self.wait(write_timeout, httpx.WriteTimeout)
        if self.lost and not self.head_done:
            raise self.error or httpx.WriteError("upstream closed the connection")
        if chunked:
            transport.write(b"0\r\n\r\n" if pending is None else pending + b"0\r\n\r\n")
        elif sent != length:
            raise httpx.LocalProtocolError("request body shorter than its Content-Length")
        self.body_sent = True

    def body_taken(self) -> None:
        self.buffered = 0
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    def reusable(self) -> bool:
        return (
            self.complete
            and self.body_sent
            and not self.lost
            and self.error is None
            and not self.head_request
            and self.status != 101
            and self.keep_alive
            and not self.extra
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, conn: _Connection, pool: _Pool, read_timeout: float | None) -> None:
        self._conn: _Connection | None = conn
        self._pool = pool
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        body = conn.body
        while True:
            if body:
                chunk = body.popleft() if len(body) == 1 else b"".join(body)
                body.clear()
                conn.body_taken()
                yield chunk
            elif conn.complete:
                break
            elif conn.error is not None:
                raise conn.error
            else:
                await conn.wait(self._read_timeout, httpx.ReadTimeout)
        await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if conn.reusable():
                self._pool.release(conn)
            else:
                self._pool.discard(conn)


class _Pool:
    """Connections to one host and port: idle ones reused last-in first-out, at most max_connections."""

    def __init__(self, host: str, port: int, limits: httpx.Limits) -> None:
        self.host = host
        self.port = port
        self._max = limits.max_connections or 1_000_000
        self._max_idle = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else self._max
        self._expiry = limits.keepalive_expiry if limits.keepalive_expiry is not None else 1e9
        self._idle: list[_Connection] = []
        self._count = 0  # open connections, idle or not
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    def take_idle(self) -> _Connection | None:
        """The most recently used idle connection still usable, if any (no await on the common path)."""
        idle = self._idle
        if idle:
            now = asyncio.get_running_loop().time()
            while idle:
                conn = idle.pop()
                if conn.usable(now):
                    return conn
                self._drop(conn)
        return None

    async def acquire(self, connect_timeout: float | None, pool_timeout: float | None) -> _Connection:
        """A connection: an idle one, a new one if below max_connections, else the next one released."""
        loop = asyncio.get_running_loop()
        while True:
            conn = self.take_idle()
            if conn is not None:
                return conn
            if self._count < self._max:
                return await self._connect(connect_timeout)
            waiter: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    conn_or_slot = await waiter
            except BaseException as exc:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if waiter.done() and not waiter.cancelled():  # given to us as we gave up: to the next in line
                    given = waiter.result()
                    if given is None:
                        self._pass_on(None)
                    else:
                        self.release(given)
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("no upstream connection free in time") from None
                raise
            if conn_or_slot is not None:
                return conn_or_slot
            # a connection closed: there is room to open one (unless someone was faster)

    async def _connect(self, connect_timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        self._count += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except TimeoutError:
            self._slot_freed()
            raise httpx.ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            self._slot_freed()
            raise httpx.ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        except BaseException:
            self._slot_freed()
            raise
        return conn

    def release(self, conn: _Connection) -> None:
        """Back from a complete exchange that left it reusable."""
        conn.active = False
        if not self._closed and self._pass_on(conn):
            return
        if self._closed or len(self._idle) >= self._max_idle:
            self._drop(conn)
            return
        conn.expires_at = asyncio.get_running_loop().time() + self._expiry
        self._idle.append(conn)

    def discard(self, conn: _Connection) -> None:
        """Back from an exchange that failed or left the connection in an unknown state."""
        conn.active = False
        self._drop(conn)

    def forget_idle(self, conn: _Connection) -> None:
        """An idle connection was closed by the upstream."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        if conn.dropped:
            return  # already counted out
        conn.dropped = True
        conn.close()
        self._slot_freed()

    def _slot_freed(self) -> None:
        self._count -= 1
        self._pass_on(None)

    def _pass_on(self, conn_or_slot: _Connection | None) -> bool:
        """Gives a connection (or room for a new one) to the first request waiting; False if none waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn_or_slot)
                return True
        return False

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._drop(self._idle.pop())
