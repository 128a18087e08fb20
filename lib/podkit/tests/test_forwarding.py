"""The X-Forwarded-For rule: the rightmost entry that no trusted proxy could have forged."""

from __future__ import annotations

import ipaddress

from podkit.forwarding import MAX_FORWARDED_ENTRIES, forwarded_client, is_trusted, parse_ip

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def entries(header: str) -> list[str]:
    return header.split(",")


def test_parse_ip_accepts_brackets_and_unmaps_ipv4() -> None:
    assert parse_ip(" 203.0.113.9 ") == ipaddress.ip_address("203.0.113.9")
    assert parse_ip("[2001:db8::1]") == ipaddress.ip_address("2001:db8::1")
    assert parse_ip("::ffff:203.0.113.9") == ipaddress.ip_address("203.0.113.9")
    assert parse_ip("not-an-ip") is None
    assert parse_ip("") is None


def test_is_trusted_compares_within_one_ip_version() -> None:
    assert is_trusted(ipaddress.ip_address("10.1.2.3"), TRUSTED)
    assert is_trusted(ipaddress.ip_address("fd00::5"), TRUSTED)
    assert not is_trusted(ipaddress.ip_address("203.0.113.9"), TRUSTED)
    assert not is_trusted(ipaddress.ip_address("10.1.2.3"), ())


def test_the_rightmost_untrusted_entry_is_the_client() -> None:
    assert forwarded_client(entries("198.51.100.1, 203.0.113.9, 10.9.9.9"), TRUSTED) == ipaddress.ip_address(
        "203.0.113.9"
    )
    assert forwarded_client(entries("[2001:db8::1], fd00::7"), TRUSTED) == ipaddress.ip_address("2001:db8::1")


def test_no_client_when_every_entry_is_trusted_or_garbage_stops_the_walk() -> None:
    assert forwarded_client(entries("10.1.1.1, 10.2.2.2"), TRUSTED) is None
    assert forwarded_client(entries("203.0.113.9, not-an-ip, 10.1.1.1"), TRUSTED) is None
    assert forwarded_client([], TRUSTED) is None


def test_only_the_last_entries_are_read() -> None:
    many = ["198.51.100.1"] + ["10.0.0.1"] * MAX_FORWARDED_ENTRIES
    assert forwarded_client(many, TRUSTED) is None
    assert forwarded_client([*many[1:-1], "198.51.100.2"], TRUSTED) == ipaddress.ip_address("198.51.100.2")
