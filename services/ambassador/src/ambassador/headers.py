"""Which headers cross the proxy, and the forwarding headers it writes: pure functions, no I/O.

Rules (the ones nginx and Envoy follow):
- Hop-by-hop headers describe one connection and never cross a proxy, in either direction: Connection and
  every header it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection and any
  Proxy-* (Proxy-Authenticate, Proxy-Authorization...). Connection cannot be used to strip Host,
  Content-Length or the headers the proxy writes itself.
- Host goes upstream as the client sent it; X-Forwarded-Host repeats it. A Host that is not
  `host[:port]` (RFC 9112 section 3.2, RFC 3986 section 3.2.2) makes the request a 400: never forwarded,
  never repeated.
- X-Forwarded-For: a trusted peer's list is kept and the peer appended; anyone else's is replaced by the
  peer, so clients cannot choose the address the upstream believes. The same trust decides whether an
  incoming X-Forwarded-Proto / -Host / Forwarded / X-Real-IP is kept or dropped.
- X-Request-ID: a well-formed incoming one is kept, else a new one; it goes upstream and back to the client.
- Via (RFC 9110 section 7.6.3): `<version> ambassador` is appended to the request's and the response's.
- Expect is answered by the ambassador's own server (uvicorn sends 100 Continue when the body is read), so
  the upstream gets the body directly and never sees Expect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httptools
from podkit.forwarding import forwarded_client, is_trusted, parse_ip

from ambassador.asgi import Header
from ambassador.config import Network

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip"})
# Never removed because Connection names them: the message would lose its framing or its provenance.
PROTECTED = frozenset({b"host", b"content-length", b"x-request-id"}) | FORWARDING
# Response headers the ambassador writes itself (uvicorn adds Date; Server is not advertised).
RESPONSE_OWN = frozenset({b"date", b"server", b"x-request-id"})

_REQUEST_SPECIAL = HOP_BY_HOP | FORWARDING | {b"host", b"x-request-id", b"content-length", b"expect", b"via"}
_RESPONSE_DROP = HOP_BY_HOP | RESPONSE_OWN | {b"via"}
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"Keep-Alive", b"close", b"Close"})
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# uri-host [ ":" port ]: an IP literal, or a reg-name of unreserved, pct-encoded and sub-delims characters
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+)(?::[0-9]{0,5})?")
VIA_NAME = b"ambassador"


def valid_host(value: bytes) -> bool:
    """Whether a Host value is `host[:port]`: no path, userinfo, spaces or stray brackets and colons."""
    return _HOST.fullmatch(value) is not None


def via(received: bytes | None, version: bytes) -> bytes:
    """The Via value to send on: the received one (if any) with this hop appended."""
    hop = (b"1.0 " if version == b"1.0" else b"1.1 ") + VIA_NAME
    return received + b", " + hop if received else hop


def new_request_id() -> bytes:
    """A fresh id in uuid4().hex form (version 4, RFC 4122 variant), without building a UUID object."""
    value = int.from_bytes(os.urandom(16), "big")
    value = (value & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    return b"%032x" % value


def valid_request_id(value: bytes) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names a Connection header lists (lower case), minus the ones that must stay."""
    if value in _PLAIN_CONNECTION:
        return set()  # nearly every request: nothing named
    tokens = {token.strip().lower() for token in value.split(b",")}
    tokens.discard(b"")
    return tokens - PROTECTED


class TrustedProxies:
    """Membership of peer addresses in TRUSTED_PROXIES, memoised (peers repeat; parsing an address does not)."""

    def __init__(self, networks: Sequence[Network], cache_size: int = 4096) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}
        self._cache_size = cache_size

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: str) -> bool:
        known = self._cache.get(address)
        if known is None:
            parsed = parse_ip(address)
            known = parsed is not None and is_trusted(parsed, self.networks)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[address] = known
        return known


def client_ip(peer: str, forwarded_for: str, trusted: TrustedProxies) -> str:
    """The client: the peer, or behind trusted peers the rightmost X-Forwarded-For entry not trusted
    (podkit.forwarding, the webserver's rule too); the peer when every entry is trusted or one is garbage."""
    if not trusted or peer not in trusted:
        return peer
    address = forwarded_client(forwarded_for.split(","), trusted.networks)
    return peer if address is None else str(address)


@dataclass(slots=True)
class ForwardedRequest:
    """What the proxy sends upstream for one request, and what it learnt on the way."""

    headers: list[Header]
    request_id: bytes
    client_ip: str
    host: bytes | None
    content_length: int | None
    chunked: bool
    header_bytes: int
    problem: str | None = None


def forward_request_headers(
    headers: Iterable[Header], *, peer: str, scheme: str, trusted: TrustedProxies, version: bytes = b"1.1"
) -> ForwardedRequest:
    """The upstream request headers for one client request (ASGI header list: names in lower case).

    One pass over the headers, because this runs for every request.
    """
    out: list[Header] = []
    size = 0
    host: bytes | None = None
    request_id: bytes | None = None
    content_length: int | None = None
    chunked = False
    problem: str | None = None
    tokens: set[bytes] | None = None
    forwarded: list[Header] | None = None
    received_via: bytes | None = None
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name not in _REQUEST_SPECIAL:
            if name[:6] != b"proxy-":
                out.append((name, value))
        elif name == b"host":
            if host is not None:
                problem = "multiple Host headers"
            elif not valid_host(value):
                problem = "invalid Host header"
            host = value
            out.append((name, value))
        elif name == b"via":
            received_via = value if received_via is None else received_via + b", " + value
        elif name == b"content-length":
            if not value.isdigit() or (content_length is not None and content_length != int(value)):
                problem = "malformed Content-Length"
            else:
                content_length = int(value)
                out.append((name, value))
        elif name == b"x-request-id":
            if request_id is None and _REQUEST_ID.fullmatch(value) is not None:
                request_id = value
        elif name in FORWARDING:
            if forwarded is None:
                forwarded = []
            forwarded.append((name, value))
        elif name == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
        elif name == b"connection":
            tokens = connection_tokens(value) if tokens is None else tokens | connection_tokens(value)
    if tokens:
        out = [header for header in out if header[0] not in tokens]
    if request_id is None:
        request_id = new_request_id()

    peer_trusted = bool(trusted) and peer in trusted
    incoming_for = b""
    proto = scheme.encode()
    forwarded_host = host if problem is None else None
    if peer_trusted and forwarded:
        for_values = []
        for name, value in forwarded:
            if name == b"x-forwarded-for":
                for_values.append(value)
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                forwarded_host = value
            else:
                out.append((name, value))  # Forwarded, X-Real-IP: a trusted proxy's, passed on
        incoming_for = b", ".join(for_values)
    peer_bytes = peer.encode()
    out.append((b"x-forwarded-for", incoming_for + b", " + peer_bytes if incoming_for else peer_bytes))
    out.append((b"x-forwarded-proto", proto))
    if forwarded_host is not None:
        out.append((b"x-forwarded-host", forwarded_host))
    out.append((b"x-request-id", request_id))
    out.append((b"via", via(received_via, version)))
    return ForwardedRequest(
        headers=out,
        request_id=request_id,
        client_ip=client_ip(peer, incoming_for.decode("latin-1"), trusted) if incoming_for else peer,
        host=host,
        content_length=content_length,
        chunked=chunked,
        header_bytes=size,
        problem=problem,
    )


def forward_response_headers(
    headers: Iterable[Header], request_id: bytes | None, version: bytes = b"1.1"
) -> tuple[list[Header], int | None]:
    """The client response headers from the upstream's (names as sent): hop-by-hop and our own removed,
    Via extended, X-Request-ID set (unless `request_id` is None: a 1xx response).

    Also returns the Content-Length, if any, so the proxy knows which body chunk is the last.
    """
    out: list[Header] = []
    tokens: set[bytes] | None = None
    content_length: int | None = None
    received_via: bytes | None = None
    for name, value in headers:
        name = name.lower()
        if name in _RESPONSE_DROP or name[:6] == b"proxy-":
            if name == b"connection":
                tokens = connection_tokens(value) if tokens is None else tokens | connection_tokens(value)
            elif name == b"via":
                received_via = value if received_via is None else received_via + b", " + value
            continue
        if name == b"content-length" and value.isdigit():
            content_length = int(value)
        out.append((name, value))
    if tokens:
        out = [header for header in out if header[0] not in tokens]
    out.append((b"via", via(received_via, version)))
    if request_id is not None:
        out.append((b"x-request-id", request_id))
    return out, content_length


def absolute_target_allowed(target: bytes, host: bytes | None) -> bool:
    """Whether an absolute-form request target (`http://h/p`) names the request's own Host.

    A reverse proxy is not a forward proxy: a target naming another host is refused, so the ambassador
    never looks like an open proxy. Hosts compare without case and without the scheme's default port.
    """
    if host is None:
        return False
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        return False
    scheme = (url.schema or b"").lower()
    if scheme not in (b"http", b"https") or not url.host:
        return False
    default_port = 80 if scheme == b"http" else 443
    target_authority = _authority(url.host, url.port, default_port)
    host_name, _, host_port = host.rpartition(b":") if not host.endswith(b"]") else (host, b"", b"")
    if not host_name or not host_port.isdigit():
        host_name, host_port = host, b""
    return target_authority == _authority(host_name, int(host_port) if host_port else None, default_port)


def _authority(host: bytes, port: int | None, default_port: int) -> bytes:
    host = host.lower().strip(b"[]")
    return host if port is None or port == default_port else host + b":%d" % port
