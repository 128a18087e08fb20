"""Which address a request came from, trusting X-Forwarded-For only from proxies we run.

The peer is the client unless the peer is trusted (loopback, where the ambassador sits, or TRUSTED_PROXIES).
Then X-Forwarded-For is read from the right: each trusted proxy appended the address it saw, so the
rightmost address that is not one of ours is the first one nobody we trust could have forged. Anything to
its left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from webserver.config import Network

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN_PEER = "unknown"
MAX_FORWARDED_ENTRIES = 64


def parse_ip(text: str) -> IpAddress | None:
    """An address from `1.2.3.4`, `2001:db8::1` or `[2001:db8::1]`; IPv4-mapped IPv6 becomes IPv4."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    def __init__(self, trusted: Iterable[Network]) -> None:
        self._trusted = tuple(trusted)

    def trusted(self, address: IpAddress) -> bool:
        return any(address.version == net.version and address in net for net in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The client address as text (at most 64 characters, the event schema's limit)."""
        peer_address = parse_ip(peer) if peer else None
        if peer_address is None:
            return (peer or UNKNOWN_PEER)[:64]
        if not self.trusted(peer_address):
            return str(peer_address)
        entries = [item for header in forwarded_for for item in header.split(",")]
        for entry in reversed(entries[-MAX_FORWARDED_ENTRIES:]):
            address = parse_ip(entry)
            if address is None:
                break  # garbage where a trusted proxy should have written an address: trust nothing left of it
            if not self.trusted(address):
                return str(address)
        return str(peer_address)
