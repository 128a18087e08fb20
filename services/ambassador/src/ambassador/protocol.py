"""uvicorn's httptools protocol, plus what a proxy on port 80 needs from the HTTP layer.

Everything here happens before the ASGI app runs (or instead of it), so a request it refuses never
reaches the upstream: uvicorn starts the app as soon as the request head is parsed, before llhttp has
finished checking the head, so the checks that decide the message's framing are made here.

1. The request target when it is not a plain path. For `GET http://other.example/x HTTP/1.1`, uvicorn
   puts only `/x` in the scope (path and raw_path) and drops the authority, so an ASGI app cannot tell
   it from `GET /x`. The ambassador refuses absolute-form targets naming another host, so this records
   the raw target of any request whose target does not start with `/`, as
   `scope["extensions"]["ambassador.request_target"]["target"]`. `OPTIONS *` and `CONNECT host:port`
   (asterisk- and authority-form, which uvicorn cannot parse) reach the app as `/` with the target there,
   so that the app answers them (200 with Allow, 405 with Allow) rather than uvicorn's plain 400.
2. Bounds on the request head: a target over MAX_URL_BYTES gets 414, a head over MAX_HEADER_BYTES plus
   the target's allowance gets 431 (or 414 if the target is what made it so), a head past that bound
   before it is buffered whole, and the connection is closed.
   (The app answers heads over MAX_HEADER_BYTES with 431 and the request id.)
3. Framing (RFC 9112 section 6): a Transfer-Encoding other than `chunked` alone gets 400 (chunked not
   final, or an HTTP/1.0 message) or 501 (a coding before chunked that we do not decode), and the
   connection is closed: the body's length could not be known.
4. Timeouts on the client (slowloris): a request head must arrive within CLIENT_HEADER_TIMEOUT of the
   connection or of its first byte (else 408 if some of it came, and close), and a request body must not
   stall for more than CLIENT_BODY_TIMEOUT between two reads (else close): nginx's client_header_timeout
   and client_body_timeout.
5. HTTP/1.0 clients: a response of unknown length is delimited by closing the connection (RFC 9112
   section 6.3), never chunked, which HTTP/1.0 does not know.
6. 1xx responses: `scope["extensions"]["ambassador.informational"]["send"](status, headers)` writes an
   informational response (103 Early Hints...) before the final one; HTTP/1.1 clients only (RFC 9110
   section 15.2).
7. One send() per response: see CoalescingTransport (about 5% less CPU per request, measured A/B).

A refusal made while an earlier pipelined response is still being sent waits for it: responses leave in
request order, and the refusal is the last thing on the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

import uvicorn
from podkit.config import require_release

from ambassador.asgi import Message
from ambassador.errors import refusal_bytes
from ambassador.headers import new_request_id

SUBCLASSED_UVICORN: Final = "0.54.0"


def check_uvicorn(module: Any) -> None:
    """Raise podkit.config.UnsupportedRelease unless `module` is uvicorn SUBCLASSED_UVICORN: the protocol below
    overrides and reads private parts of uvicorn's (its callbacks, cycle, flow control, send_400_response)."""
    require_release(
        module,
        "uvicorn",
        SUBCLASSED_UVICORN,
        user="ambassador.protocol",
        needs=f"subclasses uvicorn {SUBCLASSED_UVICORN}'s HttpToolsProtocol",
        pin_file="services/ambassador/pyproject.toml",
    )


check_uvicorn(uvicorn)  # before importing the private module, which another release may not have

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle  # noqa: E402

REQUEST_TARGET = "ambassador.request_target"
INFORMATIONAL = "ambassador.informational"
DEFAULT_MAX_URL_BYTES = 8192
# A response of unknown length to an HTTP/1.0 client: more than any body, so uvicorn's count never ends it.
UNBOUNDED = 1 << 62
REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
}


class _Refused(Exception):
    """Raised in a parser callback: the request was answered here, httptools must stop reading it."""


class AmbassadorHttpProtocol(HttpToolsProtocol):
    # build_protocol() sets these from the settings.
    max_head_bytes = 16384 + DEFAULT_MAX_URL_BYTES  # bytes of request head read at most before refusing
    max_url_bytes = DEFAULT_MAX_URL_BYTES
    header_timeout = 10.0
    body_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = -1  # bytes of the current head so far, -1 between heads
        self._refusal: bytes | None = None  # a refusal waiting for the responses before it
        self._deadline = 0.0  # loop time at which the current read (head or body) times out, 0.0: none
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._reading_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport)
        super().connection_made(self._coalescing)  # type: ignore[arg-type]
        self._informational = {"send": self._send_informational}
        self._arm(self.header_timeout)  # a connection that never sends a head is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._coalescing.flush()  # the response is whole: nothing more to gather
        super().on_response_complete()
        if self._refusal is not None and not self.pipeline and (self.cycle is None or self.cycle.response_complete):
            self._write_refusal()

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing() or self._refusal is not None:
            return  # refused already (here, in a callback): one response only
        self._refuse(400, "invalid HTTP request")

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._head_bytes = -1
        if len(self.url) > self.max_url_bytes:
            self._refuse(414, "request target too long")
            raise _Refused()
        problem = _framing_problem(self.headers, self.parser.get_http_version()) if self._has_te() else None
        if problem is not None:
            self._refuse(*problem)
            raise _Refused()
        url = self.url
        # 1xx responses only to HTTP/1.1 clients (RFC 9110 section 15.2)
        extensions: dict[str, Any] = (
            {INFORMATIONAL: self._informational} if self.parser.get_http_version() == "1.1" else {}
        )
        if url[:1] != b"/":
            if url == b"*" or self.parser.get_method() == b"CONNECT":
                self.url = b"/"  # uvicorn cannot parse `*` nor `host:port`: the app sees the target here
            extensions[REQUEST_TARGET] = {"target": url}
        self._reading_body = True
        self._arm(self.body_timeout)
        super().on_headers_complete()
        self.scope["extensions"] = extensions
        if self.scope["http_version"] == "1.0":
            cycle = self.cycle
            cycle.send = _ReadToClose(cycle, cycle.send)  # type: ignore[method-assign,assignment]

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._deadline = 0.0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._reading_body:
            self._deadline = self.loop.time() + self.body_timeout  # the body moved: its timeout restarts
        super().data_received(data)
        if self._head_bytes >= 0:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not self.transport.is_closing() and self._refusal is None:
                # the head is still incomplete: uvicorn holds its target in self.url as it is parsed
                if len(self.url) > self.max_url_bytes:
                    self._refuse(414, "request target too long")
                else:
                    self._refuse(431, "request headers too large")

    # timeouts
    def _arm(self, seconds: float) -> None:
        """The current read must end within `seconds`: one timer per connection, moved only when earlier."""
        self._deadline = deadline = self.loop.time() + seconds
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline == 0.0 or self.transport.is_closing():
            return
        now = self.loop.time()
        stalled_by_us = self._reading_body and (self.flow.read_paused or self.cycle.waiting_for_100_continue)
        if now < deadline or stalled_by_us:
            # not due, or the body waits for us (flow control, 100 Continue not sent yet), not for the client
            if stalled_by_us:  # the client's time starts again once we read again
                self._timer_at = self._deadline = now + self.body_timeout
            else:
                self._timer_at = max(deadline, now + 0.1)
            self._timer = self.loop.call_at(self._timer_at, self._check_deadline)
            return
        self._deadline = 0.0
        if self._reading_body:
            self.logger.warning("client request body timed out: connection closed", extra={"client": self._peer()})
            self.transport.close()  # the app sees the client gone; the upstream request is abandoned
        elif self._head_bytes > 0:
            self._refuse(408, "request head not received in time")
        else:
            self.transport.close()  # nothing asked: nothing to answer

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"

    # refusals
    def _has_te(self) -> bool:
        return any(name == b"transfer-encoding" for name, _ in self.headers)

    def _refuse(self, status: int, error: str) -> None:
        """Answers `status` with a JSON error and closes the connection (after the responses before it)."""
        request_id = new_request_id()
        self._refusal = refusal_bytes(status, REASONS[status], error, request_id)
        self.logger.warning(
            "request refused by the HTTP layer",
            extra={"status": status, "error": error, "request_id": request_id.decode(), "client": self._peer()},
        )
        self._deadline = 0.0
        self._head_bytes = -1
        in_flight = self.cycle is not None and not self.cycle.response_complete
        if self.pipeline or (in_flight and not self._reading_body):
            self.flow.pause_reading()  # an earlier response is on its way: the refusal follows it
            return
        if in_flight and self.cycle.response_started:
            self.transport.close()  # this request's own response has begun: too late for another, cut it
            return
        self._write_refusal()  # about this request (its head or its body): the app's answer, if any, is void

    def _write_refusal(self) -> None:
        refusal, self._refusal = self._refusal, b""
        if refusal and not self.transport.is_closing():
            self.transport.write(refusal)
            self.transport.close()

    def _send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self.transport.is_closing():
            return
        parts = [b"HTTP/1.1 %d \r\n" % status]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))


def _framing_problem(headers: list[tuple[bytes, bytes]], http_version: str) -> tuple[int, str] | None:
    """Why a request's Transfer-Encoding leaves its body length unknown (RFC 9112 section 6), or None."""
    codings = [
        token.strip().lower() for name, value in headers if name == b"transfer-encoding" for token in value.split(b",")
    ]
    if http_version == "1.0":
        return 400, "Transfer-Encoding in an HTTP/1.0 request"
    if codings == [b"chunked"]:
        return None
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        return 400, "Transfer-Encoding must end with chunked"
    return 501, "only the chunked transfer coding is supported"


class _ReadToClose:
    """An HTTP/1.0 request's `send`: a response of unknown length is delimited by closing, not chunked.

    uvicorn chunks any response without Content-Length whatever the client's version; with its count set
    beyond any body it writes the body as is, and the last message sets the count to what is left. uvicorn
    closes HTTP/1.0 connections after the response (and says `connection: close`).
    """

    __slots__ = ("_cycle", "_send", "_until_close")

    def __init__(self, cycle: RequestResponseCycle, send: Callable[[Any], Awaitable[None]]) -> None:
        self._cycle = cycle
        self._send = send
        self._until_close = False

    async def __call__(self, message: Message) -> None:
        cycle = self._cycle
        if message["type"] == "http.response.start":
            status = message["status"]
            framed = any(
                name.lower() in (b"content-length", b"transfer-encoding") for name, _ in message.get("headers", ())
            )
            if not framed and status not in (204, 304) and cycle.scope["method"] != "HEAD":
                self._until_close = True
                cycle.chunked_encoding = False
                cycle.expected_content_length = UNBOUNDED
        elif self._until_close and not message.get("more_body", False):
            cycle.expected_content_length = len(message.get("body", b""))
        await self._send(message)


def build_protocol(
    max_header_bytes: int,
    max_url_bytes: int = DEFAULT_MAX_URL_BYTES,
    header_timeout: float = 10.0,
    body_timeout: float = 30.0,
) -> type[AmbassadorHttpProtocol]:
    """The protocol class for uvicorn.Config(http=...), bounded by the settings."""
    return type(
        "AmbassadorHttpProtocol",
        (AmbassadorHttpProtocol,),
        {
            "max_head_bytes": max_header_bytes + max_url_bytes,
            "max_url_bytes": max_url_bytes,
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
        },
    )


class CoalescingTransport:
    """A client transport whose writes of one event-loop iteration leave in one send().

    uvicorn writes a response's head when the app sends http.response.start and its body on each
    http.response.body: two send() calls, two wakeups of the client, for a response whose body was
    already there. Writes are gathered and flushed by a callback at the next iteration (and before a close).
    """

    __slots__ = ("_buffer", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport: Any = transport
        self._loop = asyncio.get_running_loop()
        self._buffer: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if data:
            self._buffer.append(data)
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        buffer = self._buffer
        if buffer:
            data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
            buffer.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
