"""Which address a request came from behind proxies we trust: the X-Forwarded-For rule, pure functions.

Each trusted proxy appended the address it saw, so the rightmost address that is not one of ours is the
first one nobody we trust could have forged. Anything to its left was written by the client and is ignored;
garbage where a trusted proxy should have written an address means nothing left of it is trusted. Callers
decide first whether the peer itself is trusted (the ambassador memoises that, it runs on every request).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_FORWARDED_ENTRIES = 64  # a longer list is someone's attempt at a slow request; the rest is ignored


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


def is_trusted(address: IpAddress, trusted: tuple[Network, ...]) -> bool:
    """Whether `address` is in one of the `trusted` networks (a loop: no generator per call)."""
    for network in trusted:  # noqa: SIM110 - any() would allocate a generator on every request
        if address.version == network.version and address in network:
            return True
    return False


def forwarded_client(entries: Sequence[str], trusted: tuple[Network, ...]) -> IpAddress | None:
    """The rightmost of the X-Forwarded-For `entries` (its comma-separated items, oldest first) that is not
    `trusted`; None when all are trusted or the walk meets garbage: then the client is the (trusted) peer."""
    for entry in reversed(entries[-MAX_FORWARDED_ENTRIES:]):
        address = parse_ip(entry)
        if address is None or not is_trusted(address, trusted):
            return address
    return None
