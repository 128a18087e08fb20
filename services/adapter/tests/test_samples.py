"""The shared samples in contracts/samples/ are what their README says they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
SAMPLES = CONTRACTS / "samples"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads((CONTRACTS / "login-event.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_valid_samples_match_the_json_schema(validator: Draft202012Validator) -> None:
    paths = sorted((SAMPLES / "valid").glob("*.json"))
    assert len(paths) >= 5
    events = [json.loads(path.read_bytes()) for path in paths]
    for path, event in zip(paths, events, strict=True):
        errors = [error.message for error in validator.iter_errors(event)]
        assert errors == [], path.name
    assert len({event["event_id"] for event in events}) == len(events)


def test_samples_are_one_line_each() -> None:
    for path in [*SAMPLES.glob("valid/*.json"), *SAMPLES.glob("hostile/*.json")]:
        data = path.read_bytes()
        assert data.count(b"\n") == 1, path.name
        assert data.endswith(b"\n"), path.name
        assert isinstance(json.loads(data), dict), path.name


def test_hostile_samples_break_the_json_schema_or_xml(validator: Draft202012Validator) -> None:
    """Each hostile sample is hostile: it is not a valid event, or its text needs escaping or replacing in XML."""
    for path in sorted((SAMPLES / "hostile").glob("*.json")):
        text = path.read_text()
        event = json.loads(text)
        needs_care = any(marker in text for marker in ("<", "&", "]]>", "\\u00", "\\ud8", "\\udf", "\\uff"))
        assert needs_care or not validator.is_valid(event), path.name


def test_not_objects_are_not_json_objects() -> None:
    for line in (SAMPLES / "not-objects.txt").read_bytes().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        assert not isinstance(value, dict), line
