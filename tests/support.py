"""Helpers for the end-to-end tests: polling with deadlines, reading what the pod wrote."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = REPO_ROOT / "contracts"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now (tests never bind fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_events(events_dir: Path) -> list[dict[str, Any]]:
    """Every event in the shared volume's events/ segments, in order."""
    events: list[dict[str, Any]] = []
    for segment in sorted(events_dir.glob("events-*.jsonl")):
        for line in segment.read_bytes().splitlines():
            events.append(json.loads(line))
    return events


_XSD: etree.XMLSchema | None = None


def xsd() -> etree.XMLSchema:
    global _XSD
    if _XSD is None:
        _XSD = etree.XMLSchema(etree.parse(str(CONTRACTS / "login-events.xsd")))
    return _XSD


def read_xml_events(xml_dir: Path, *, validate: bool = True) -> list[dict[str, str]]:
    """Every <event> in the adapter's documents, as a dict of child text; each document checked against the XSD."""
    records: list[dict[str, str]] = []
    for document in sorted(xml_dir.glob("*.xml")):
        tree = etree.parse(str(document))  # raises if the document is not well-formed
        if validate:
            xsd().assertValid(tree)
        for event in tree.getroot():
            records.append({child.tag: child.text or "" for child in event})
    return records


def counts(records: list[dict[str, Any]], key: str = "event_id") -> Counter[str]:
    return Counter(str(record[key]) for record in records)
