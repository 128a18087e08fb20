"""The upstream: one httpx transport for the pod's web server, built once, and what its failures mean.

The ambassador speaks httpx's transport API (httpx.Request -> AsyncBaseTransport.handle_async_request ->
httpx.Response), not httpx.AsyncClient: the client layer adds what a reverse proxy must not have (a
cookie jar that would collect every user's Set-Cookie, redirect handling, default headers, auth) and
costs about 120 us of CPU per request on our cores for it (AsyncClient.send vs the transport, same
request). Timeouts travel in the request's `timeout` extension, where AsyncClient would put them.

Transports (UPSTREAM_TRANSPORT): `aiohttp` (httpx-aiohttp), `httpcore` (httpx's default) and `httptools`
(ambassador.httptools_transport). The first needs a full URL per request; the other two take the
request target in the `target` extension, so one parsed httpx.URL serves every request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from ambassador.config import Settings
from ambassador.httptools_transport import HttptoolsTransport

Header = tuple[bytes, bytes]
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


def build_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    if settings.upstream_transport == "httptools":
        return HttptoolsTransport(limits)
    if settings.upstream_transport == "httpcore":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    return _aiohttp_transport(limits)


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    def session() -> aiohttp.ClientSession:
        # The session httpx-aiohttp would build, minus the headers aiohttp adds on its own (Accept,
        # Accept-Encoding: gzip would let the upstream compress for a client that never asked, User-Agent).
        connector = aiohttp.TCPConnector(limit=limits.max_connections or 0, keepalive_timeout=KEEPALIVE_EXPIRY)
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    return AiohttpTransport(limits=limits, trust_env=False, client=session)


class Upstream:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = httpx.URL(settings.upstream_url)
        self.origin = f"{self.url.scheme}://{self.url.netloc.decode('ascii')}"
        self.netloc = self.url.netloc
        self._prefix = self.url.raw_path.rstrip(b"/")
        self.transport = transport if transport is not None else build_transport(settings)
        self._full_url = settings.upstream_transport == "aiohttp" and transport is None
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

        `informational` gets the upstream's 1xx responses (status, headers) before the final one; only the
        httptools transport calls it (httpcore and aiohttp do not expose 1xx responses)."""
        target = self._prefix + target
        if self._full_url:
            # httpx-aiohttp sends str(request.url), and reads a body only from a stream it was not given
            # as bytes: a body-less request must be built without one or aiohttp would chunk an empty body.
            url = httpx.URL(self.origin + target.decode("ascii"))
            return httpx.Request(method, url, headers=headers, stream=stream, extensions={"timeout": self._timeout})
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
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        # httpx-aiohttp maps by the first matching base class: a refused connection arrives as ConnectTimeout.
        return _aiohttp_failure(cause)
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


def _aiohttp_failure(cause: BaseException) -> Failure:
    import aiohttp

    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return CONNECT_TIMEOUT
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return TIMED_OUT
    if isinstance(cause, aiohttp.ClientConnectorError):
        return CONNECT_FAILED
    return BROKEN
