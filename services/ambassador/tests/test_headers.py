"""The header rules as pure functions: what crosses the proxy and what it writes."""

from __future__ import annotations

import ipaddress
import re
import uuid

import pytest
from ambassador.headers import (
    ForwardedRequest,
    TrustedProxies,
    absolute_target_allowed,
    client_ip,
    forward_request_headers,
    forward_response_headers,
    new_request_id,
    valid_host,
    valid_request_id,
)

NOBODY = TrustedProxies(())
PROXY = TrustedProxies((ipaddress.ip_network("10.0.0.0/8"),))


def forward(
    headers: list[tuple[bytes, bytes]], peer: str = "192.0.2.10", trusted: TrustedProxies = NOBODY
) -> ForwardedRequest:
    return forward_request_headers(headers, peer=peer, scheme="http", trusted=trusted)


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name for name, _ in headers]


def values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


def test_hop_by_hop_request_headers_are_stripped() -> None:
    result = forward(
        [
            (b"host", b"pod.example"),
            (b"connection", b"keep-alive, X-Secret-Hop"),
            (b"x-secret-hop", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"te", b"trailers"),
            (b"trailer", b"x-checksum"),
            (b"transfer-encoding", b"chunked"),
            (b"upgrade", b"h2c"),
            (b"proxy-connection", b"keep-alive"),
            (b"proxy-authorization", b"Basic eA=="),
            (b"proxy-anything", b"x"),
            (b"expect", b"100-continue"),
            (b"accept", b"*/*"),
            (b"cookie", b"session=abc"),
        ]
    )
    assert names(result.headers)[:3] == [b"host", b"accept", b"cookie"]
    forbidden = {b"connection", b"x-secret-hop", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
    assert not forbidden & set(names(result.headers))
    assert not any(name.startswith(b"proxy-") for name in names(result.headers))
    assert b"expect" not in names(result.headers)
    assert result.chunked


def test_connection_cannot_strip_host_length_or_forwarding_headers() -> None:
    result = forward(
        [
            (b"host", b"pod.example"),
            (b"content-length", b"3"),
            (b"connection", b"host, content-length, x-forwarded-for, x-request-id, x-real-ip"),
        ]
    )
    assert values(result.headers, b"host") == [b"pod.example"]
    assert values(result.headers, b"content-length") == [b"3"]
    assert values(result.headers, b"x-forwarded-for") == [b"192.0.2.10"]
    assert result.content_length == 3


def test_untrusted_peer_forwarding_headers_are_replaced() -> None:
    result = forward(
        [
            (b"host", b"pod.example"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"evil.example"),
            (b"forwarded", b"for=1.2.3.4"),
            (b"x-real-ip", b"1.2.3.4"),
        ]
    )
    assert values(result.headers, b"x-forwarded-for") == [b"192.0.2.10"]
    assert values(result.headers, b"x-forwarded-proto") == [b"http"]
    assert values(result.headers, b"x-forwarded-host") == [b"pod.example"]
    assert values(result.headers, b"forwarded") == []
    assert values(result.headers, b"x-real-ip") == []
    assert result.client_ip == "192.0.2.10"


def test_trusted_peer_forwarding_headers_are_kept_and_extended() -> None:
    result = forward(
        [
            (b"host", b"pod.example"),
            (b"x-forwarded-for", b"203.0.113.9, 10.1.1.1"),
            (b"x-forwarded-for", b"10.2.2.2"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"www.example"),
            (b"x-real-ip", b"203.0.113.9"),
        ],
        peer="10.0.0.5",
        trusted=PROXY,
    )
    assert values(result.headers, b"x-forwarded-for") == [b"203.0.113.9, 10.1.1.1, 10.2.2.2, 10.0.0.5"]
    assert values(result.headers, b"x-forwarded-proto") == [b"https"]
    assert values(result.headers, b"x-forwarded-host") == [b"www.example"]
    assert values(result.headers, b"x-real-ip") == [b"203.0.113.9"]
    assert result.client_ip == "203.0.113.9"


def test_trusted_peer_without_forwarding_headers_is_the_client() -> None:
    result = forward([(b"host", b"pod.example")], peer="10.0.0.5", trusted=PROXY)
    assert values(result.headers, b"x-forwarded-for") == [b"10.0.0.5"]
    assert result.client_ip == "10.0.0.5"


def test_client_ip_is_the_rightmost_untrusted_address() -> None:
    assert client_ip("10.0.0.5", "198.51.100.1, 203.0.113.9, 10.9.9.9", PROXY) == "203.0.113.9"
    assert client_ip("10.0.0.5", "10.1.1.1, 10.2.2.2", PROXY) == "10.0.0.5"
    assert client_ip("10.0.0.5", "203.0.113.9, not-an-ip", PROXY) == "10.0.0.5"
    assert client_ip("10.0.0.5", "[2001:db8::1]", PROXY) == "2001:db8::1"
    assert client_ip("10.0.0.5", "::ffff:203.0.113.9", PROXY) == "203.0.113.9"
    assert client_ip("192.0.2.10", "203.0.113.9", PROXY) == "192.0.2.10"
    assert client_ip("192.0.2.10", "203.0.113.9", NOBODY) == "192.0.2.10"


def test_request_id_is_kept_when_well_formed() -> None:
    result = forward([(b"host", b"h"), (b"x-request-id", b"abc-123_x.y:z")])
    assert result.request_id == b"abc-123_x.y:z"
    assert values(result.headers, b"x-request-id") == [b"abc-123_x.y:z"]


@pytest.mark.parametrize("incoming", [b"has space", b"a" * 129, b"", b"semi;colon", b"caf\xc3\xa9"])
def test_malformed_request_id_is_replaced(incoming: bytes) -> None:
    result = forward([(b"host", b"h"), (b"x-request-id", incoming)])
    assert result.request_id != incoming
    assert re.fullmatch(rb"[0-9a-f]{32}", result.request_id)
    assert values(result.headers, b"x-request-id") == [result.request_id]


def test_new_request_ids_are_uuid4_hex() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for request_id in ids:
        parsed = uuid.UUID(hex=request_id.decode())
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == request_id.decode()
        assert valid_request_id(request_id)


def test_header_size_counts_names_and_values() -> None:
    result = forward([(b"host", b"h"), (b"x-big", b"a" * 1000)])
    assert result.header_bytes == len(b"host") + 1 + 4 + len(b"x-big") + 1000 + 4


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([(b"host", b"a"), (b"host", b"b")], "multiple Host headers"),
        ([(b"host", b"a"), (b"content-length", b"+5")], "malformed Content-Length"),
        ([(b"host", b"a"), (b"content-length", b"5"), (b"content-length", b"6")], "malformed Content-Length"),
    ],
)
def test_ambiguous_requests_are_flagged(headers: list[tuple[bytes, bytes]], problem: str) -> None:
    assert forward(headers).problem == problem


def test_response_headers_drop_hop_by_hop_and_our_own() -> None:
    out, length = forward_response_headers(
        [
            (b"Content-Type", b"text/html"),
            (b"Content-Length", b"42"),
            (b"Connection", b"X-Internal"),
            (b"X-Internal", b"1"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Proxy-Authenticate", b"Basic"),
            (b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT"),
            (b"Server", b"uvicorn"),
            (b"X-Request-ID", b"other"),
            (b"Set-Cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ],
        b"rid",
    )
    assert length == 42
    assert out == [
        (b"content-type", b"text/html"),
        (b"content-length", b"42"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"via", b"1.1 ambassador"),
        (b"x-request-id", b"rid"),
    ]


@pytest.mark.parametrize(
    ("target", "host", "allowed"),
    [
        (b"http://pod.example/x", b"pod.example", True),
        (b"http://POD.example:80/x", b"pod.example", True),
        (b"http://pod.example/x", b"pod.example:80", True),
        (b"http://pod.example:8000/x", b"pod.example:8000", True),
        (b"http://[::1]:8000/", b"[::1]:8000", True),
        (b"http://other.example/x", b"pod.example", False),
        (b"http://pod.example:8000/x", b"pod.example", False),
        (b"http://pod.example/x", None, False),
        (b"ftp://pod.example/x", b"pod.example", False),
        (b"other.example:443", b"pod.example", False),
    ],
)
def test_absolute_form_targets_must_name_the_request_host(target: bytes, host: bytes | None, allowed: bool) -> None:
    assert absolute_target_allowed(target, host) is allowed


@pytest.mark.parametrize(
    "host",
    [b"a b", b"evil.example/path", b"user@x", b"a\tb", b"[::1", b"a:b:c", b"", b"x:80:80", b"a\\b", b"%zz"],
)
def test_invalid_host_values_are_flagged_and_not_forwarded(host: bytes) -> None:
    """RFC 9112 section 3.2: Host is uri-host [":" port]; anything else is a 400 and never forwarded."""
    assert not valid_host(host)
    result = forward([(b"host", host)])
    assert result.problem == "invalid Host header"
    assert values(result.headers, b"x-forwarded-host") == []


@pytest.mark.parametrize(
    "host", [b"pod.example", b"pod.example:8000", b"127.0.0.1:80", b"[::1]:8080", b"[2001:db8::1]", b"xn--a-b.c"]
)
def test_valid_host_values_pass(host: bytes) -> None:
    assert valid_host(host)
    result = forward([(b"host", host)])
    assert result.problem is None
    assert values(result.headers, b"x-forwarded-host") == [host]


def test_via_is_appended_both_ways() -> None:
    """RFC 9110 section 7.6.3: each proxy appends its hop, with the version of the message it received."""
    request = forward_request_headers(
        [(b"host", b"h"), (b"via", b"1.1 edge")], peer="192.0.2.1", scheme="http", trusted=NOBODY, version=b"1.0"
    )
    assert values(request.headers, b"via") == [b"1.1 edge, 1.0 ambassador"]
    assert values(forward([(b"host", b"h")]).headers, b"via") == [b"1.1 ambassador"]
    out, _ = forward_response_headers([(b"Via", b"1.1 cache")], b"rid")
    assert values(out, b"via") == [b"1.1 cache, 1.1 ambassador"]
