"""The upstream: one httpx transport for the pod's web server, built once, and what its failures mean.

The ambassador speaks httpx's transport API (httpx.Request -> AsyncBaseTransport.handle_async_request ->
httpx.Response), not httpx.AsyncClient: the client layer adds what a reverse proxy must not have (a
cookie jar that would collect every user's Set-Cookie, redirect handling, default headers, auth) and
costs about 120 us of CPU per request on our cores for it (AsyncClient.send vs the transport, same
request). Timeouts travel in the request's `timeout` extension, where AsyncClient would put them.

One transport: ambassador.httptools_transport (why, and its figures against httpx's default httpcore and
httpx-aiohttp: the README's Limits; services/ambassador/bench/transports.py compares them). It takes the
request target in the `target` extension, so one parsed httpx.URL serves every request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from ambassador.asgi import Header
from ambassador.config import Settings
from ambassador.httptools_transport import HttptoolsTransport

# Below uvicorn's default keep-alive timeout (5 s), so the upstream is not the one that closes idle connections.
KEEPALIVE_EXPIRY = 4.0
READY_PATH = b"/healthz"
READY_TIMEOUT = 2.0
NO_BODY = httpx.ByteStream(b"")


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed upstream exchange is answered: status, a metrics label, the client's message."""

    status: int
    kind: str
    error: str


CONNECT_FAILED = Failure(502, "connect", "upstream unavailable")
CONNECT_TIMEOUT = Failure(504, "connect_timeout", "upstream did not accept the connection in time")
TIMED_OUT = Failure(504, "timeout", "upstream timed out")
BUSY = Failure(503, "pool_timeout", "upstream busy")
BROKEN = Failure(502, "protocol", "upstream failed")


def build_transport(settings: Settings) -> HttptoolsTransport:
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    return HttptoolsTransport(limits)


class Upstream:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = httpx.URL(settings.upstream_url)
        self.netloc = self.url.netloc
        self._prefix = self.url.raw_path.rstrip(b"/")
        self.transport = transport if transport is not None else build_transport(settings)
        self._timeout = {
            "connect": settings.connect_timeout,
            "read": settings.read_timeout,
            "write": settings.read_timeout,
            "pool": settings.connect_timeout,
        }
        self._ready_timeout = {**self._timeout, "read": min(settings.read_timeout, READY_TIMEOUT)}

    def request(
        self,
        method: str,
        target: bytes,
        headers: Sequence[Header],
        stream: httpx.AsyncByteStream | None,
        informational: Callable[[int, list[Header]], None] | None = None,
    ) -> httpx.Request:
        """The upstream request for `target` (origin-form: path and query). No header is added.

        `informational` gets the upstream's 1xx responses (status, headers) before the final one."""
        target = self._prefix + target
        # stream= (never None) tells httpx the headers are complete: it adds none, so it need not scan them.
        return httpx.Request(
            method,
            self.url,
            headers=headers,
            stream=stream if stream is not None else NO_BODY,
            extensions={"timeout": self._timeout, "target": target, "informational": informational},
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self.transport.handle_async_request(request)

    async def ready(self) -> bool:
        """Whether the upstream's own /healthz answers 200."""
        request = self.request("GET", READY_PATH, [(b"host", self.netloc)], None)
        request.extensions["timeout"] = self._ready_timeout
        try:
            response = await self.send(request)
            try:
                async for _ in response.stream:  # type: ignore[union-attr]
                    pass
            finally:
                await response.aclose()
        except (httpx.TransportError, OSError, TimeoutError):
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self.transport.aclose()


def classify(exc: BaseException) -> Failure | None:
    """What a failed exchange means for the client; None if `exc` is not an upstream failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return CONNECT_TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        return CONNECT_FAILED
    if isinstance(exc, httpx.PoolTimeout):
        return BUSY
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TIMED_OUT
    if isinstance(exc, httpx.TransportError | OSError):
        return BROKEN
    return None
