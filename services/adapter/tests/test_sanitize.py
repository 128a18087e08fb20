from __future__ import annotations

from pathlib import Path

from adapter.sanitize import FIELDS, REPLACEMENT, clean_text, sanitize
from lxml import etree

XSD = Path(__file__).resolve().parents[3] / "contracts" / "login-events.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"


def test_fields_and_lengths_are_the_xsds() -> None:
    schema = etree.parse(str(XSD))
    lengths = {
        simple.get("name"): int(simple.find(f"{XS}restriction/{XS}maxLength").get("value"))
        for simple in schema.iter(f"{XS}simpleType")
        if simple.find(f"{XS}restriction/{XS}maxLength") is not None
    }
    event_type = schema.find(f"{XS}complexType[@name='event']")
    expected = {
        element.get("name"): (None if element.get("type") == "flag" else lengths[element.get("type")])
        for element in event_type.iter(f"{XS}element")
    }
    assert list(FIELDS.items()) == list(expected.items())


def test_characters_xml_forbids_are_replaced() -> None:
    text = "a\x00b\x08c\x0bd\x0ce\x1ff\ud800g\udfffh\ufffei\uffff"
    assert clean_text(text, 100) == REPLACEMENT.join(["a", "b", "c", "d", "e", "f", "g", "h", "i", ""])
    allowed = "tab\there\nnew\rcr \x7f\x85 \ud7ff\ue000\ufffd \U00010000\U0010ffff \ufdd0"
    assert clean_text(allowed, 100) == allowed


def test_values_are_truncated_to_the_xsd_lengths() -> None:
    record = sanitize({"username": "u" * 10_000, "user_agent": "a" * 513, "event_id": "e" * 64}).record
    assert record["username"] == "u" * 256
    assert record["user_agent"] == "a" * 512
    assert record["event_id"] == "e" * 64


def test_fields_come_in_schema_order_missing_ones_null_unknown_ones_dropped() -> None:
    result = sanitize({"pod": "p", "password": "hunter2", "event_id": "e", "<x>": 1})
    assert list(result.record) == list(FIELDS)
    assert result.record["pod"] == "p"
    assert result.record["event_id"] == "e"
    assert result.record["username"] is None
    assert "password" not in result.record
    assert result.dropped_keys == 2
    assert result.sanitized_values == 0


def test_non_string_values_become_text() -> None:
    record = sanitize(
        {
            "event_id": 12,
            "timestamp": 1.5,
            "reason": True,
            "outcome": False,
            "username": {"b": [1, None, "é"], "a": {}},
            "user_agent": [],
        }
    ).record
    assert record["event_id"] == "12"
    assert record["timestamp"] == "1.5"
    assert (record["reason"], record["outcome"]) == ("true", "false")
    assert record["username"] == '{"b":[1,null,"é"],"a":{}}'
    assert record["user_agent"] == "[]"


def test_the_flag_is_true_false_or_empty() -> None:
    def flag(value: object) -> str | None:
        return sanitize({"username_truncated": value}).record["username_truncated"]

    assert (flag(True), flag(False), flag(None)) == ("true", "false", None)
    assert (flag("true"), flag("false"), flag("")) == ("true", "false", "")
    assert (flag(1), flag(0), flag("yes"), flag([True]), flag(1.0)) == ("", "", "", "", "")


def test_changed_values_are_counted() -> None:
    result = sanitize(
        {
            "event_id": "ok",
            "username": "x\x00",
            "user_agent": "a" * 600,
            "request_id": 5,
            "username_truncated": True,
            "pod": None,
            "service": "yes",
        }
    )
    assert result.sanitized_values == 3
    assert sanitize({"username_truncated": "yes"}).sanitized_values == 1
