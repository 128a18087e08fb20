"""Helpers for the end-to-end tests: polling with deadlines, reading what the pod wrote."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from lxml import etree
from podkit_testing import free_port, wait_for  # noqa: F401 - re-exported for the suites

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = REPO_ROOT / "contracts"


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
