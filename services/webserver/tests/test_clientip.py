"""client_ip: the peer, or, behind a trusted proxy, the rightmost untrusted X-Forwarded-For address."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from webserver.clientip import ClientIpResolver
from webserver.config import LOOPBACK

RESOLVER = ClientIpResolver((*LOOPBACK, ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # untrusted peer: its header is ignored
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # leftmost is client-written
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # skip our own proxies
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # several headers
        ("::1", ["2001:db8::7"], "2001:db8::7"),
        ("127.0.0.1", ["[2001:db8::8]"], "2001:db8::8"),
        ("127.0.0.1", ["::ffff:198.51.100.9"], "198.51.100.9"),
        ("::ffff:127.0.0.1", ["198.51.100.3"], "198.51.100.3"),
        ("127.0.0.1", ["6.6.6.6, garbage"], "127.0.0.1"),  # nothing left of garbage is trusted
        ("127.0.0.1", ["10.0.0.1, 127.0.0.1"], "127.0.0.1"),  # all trusted: the peer
        ("10.9.9.9", ["fd00::1, 198.51.100.4, fd00::2"], "198.51.100.4"),
        (None, [], "unknown"),
    ],
)
def test_resolve(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert RESOLVER.resolve(peer, forwarded) == expected


async def test_event_client_ip_follows_the_trust_rules(make_client: Any, helpers: Any) -> None:
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.20"}
    async with make_client(peer="127.0.0.1") as client:
        await client.post("/login", json={"username": "alice", "password": "x"}, headers=headers)
    async with make_client(peer="203.0.113.50") as client:
        await client.post("/login", json={"username": "alice", "password": "x"}, headers=headers)
    async with make_client(peer="192.168.5.5", TRUSTED_PROXIES="192.168.0.0/16") as client:
        await client.post("/login", json={"username": "alice", "password": "x"}, headers=headers)
    assert [e["client_ip"] for e in helpers.events()] == ["198.51.100.20", "203.0.113.50", "198.51.100.20"]
