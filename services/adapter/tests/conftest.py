"""Fixtures shared by the adapter's tests: the contract files, sample events, segments and documents (deadline
polling: podkit_testing)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[3]
CONTRACTS = REPO / "contracts"
SAMPLES = CONTRACTS / "samples"


@pytest.fixture(scope="session")
def xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(CONTRACTS / "login-events.xsd")))


@pytest.fixture(scope="session")
def samples() -> dict[str, bytes]:
    """Every sample event, `valid/NAME` and `hostile/NAME`, as its JSON line (newline included)."""
    return {
        f"{path.parent.name}/{path.stem}": path.read_bytes()
        for kind in ("valid", "hostile")
        for path in sorted((SAMPLES / kind).glob("*.json"))
    }


def make_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": "2026-11-25T03:04:05.123456Z",
        "event_type": "login.failure",
        "outcome": "failure",
        "reason": "bad_password",
        "username": "alice",
        "username_truncated": False,
        "client_ip": "203.0.113.7",
        "user_agent": "pytest",
        "request_id": None,
        "service": "webserver",
        "pod": "login-pod-0",
    }
    event.update(fields)
    return event


def event_lines(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


def append_segment(shared: Path, number: int, data: bytes) -> Path:
    """Append complete lines to a segment, in one write, as the sidecar does."""
    path = shared / "events" / f"events-{number:08d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as file:
        file.write(data)
    return path


def read_documents(shared: Path, xsd: etree.XMLSchema) -> list[tuple[str, list[dict[str, str]]]]:
    """Every document in xml/ (in name order), each checked well-formed and valid, as lists of events."""
    documents = []
    for path in sorted((shared / "xml").glob("*.xml")):
        root = etree.fromstring(path.read_bytes())
        xsd.assertValid(root)
        documents.append((path.name, [{child.tag: child.text or "" for child in event} for event in root]))
    return documents


def converted_ids(shared: Path, xsd: etree.XMLSchema) -> list[str]:
    return [event["event_id"] for _, events in read_documents(shared, xsd) for event in events]


def dead_letters(shared: Path) -> list[dict[str, Any]]:
    path = shared / "deadletter" / "adapter.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def checkpoint(shared: Path) -> dict[str, Any] | None:
    path = shared / "state" / "adapter" / "xml.json"
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, ValueError):
        return None


class Kit:
    """The helpers above, for tests (with --import-mode=importlib, test modules cannot import conftest)."""

    make_event = staticmethod(make_event)
    event_lines = staticmethod(event_lines)
    append_segment = staticmethod(append_segment)
    read_documents = staticmethod(read_documents)
    converted_ids = staticmethod(converted_ids)
    dead_letters = staticmethod(dead_letters)
    checkpoint = staticmethod(checkpoint)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    directory = tmp_path / "shared"
    (directory / "events").mkdir(parents=True)
    return directory
