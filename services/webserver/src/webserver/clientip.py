"""Which address a request came from, trusting X-Forwarded-For only from proxies we run.

The peer is the client unless the peer is trusted (loopback, where the ambassador sits, or TRUSTED_PROXIES).
Then X-Forwarded-For is read from the right (podkit.forwarding, the ambassador's rule too): the rightmost
address that is not one of ours is the first one nobody we trust could have forged.
"""

from __future__ import annotations

from collections.abc import Iterable

from podkit.forwarding import IpAddress, forwarded_client, is_trusted, parse_ip

from webserver.config import Network

UNKNOWN_PEER = "unknown"


class ClientIpResolver:
    def __init__(self, trusted: Iterable[Network]) -> None:
        self._trusted = tuple(trusted)

    def trusted(self, address: IpAddress) -> bool:
        return is_trusted(address, self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The client address as text (at most 64 characters, the event schema's limit)."""
        peer_address = parse_ip(peer) if peer else None
        if peer_address is None:
            return (peer or UNKNOWN_PEER)[:64]
        if not self.trusted(peer_address):
            return str(peer_address)
        entries = [item for header in forwarded_for for item in header.split(",")]
        client = forwarded_client(entries, self._trusted)
        return str(peer_address if client is None else client)
