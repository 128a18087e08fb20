"""The login event: the reasons the contract allows, and events that match the schema whatever the input."""

from __future__ import annotations

import json
import typing
from typing import Any

import jsonschema
from webserver.events import Reason, build_event, encode_event


def test_every_reason_the_webserver_can_write_is_one_the_contract_allows(helpers: Any) -> None:
    """The producer's side of the contract: a reason added in code but not in the schema would make the
    consumers dead-letter or reject those events."""
    allowed = set(helpers.schema["properties"]["reason"]["enum"]) - {None}
    assert set(typing.get_args(Reason)) == allowed
    validator = jsonschema.Draft202012Validator(helpers.schema)
    for reason in typing.get_args(Reason):
        validator.validate(
            build_event(
                event_type="login.failure",
                reason=reason,
                username="u",
                client_ip="192.0.2.1",
                user_agent=None,
                request_id=None,
                pod="p",
            )
        )


def test_built_events_match_the_schema_whatever_the_input(helpers: Any) -> None:
    validator = jsonschema.Draft202012Validator(helpers.schema)
    for username in (None, "", "x" * 300, "\x00\n\u2028\ud800", "]]><&"):
        event = build_event(
            event_type="logout",
            reason=None,
            username=username,
            client_ip="2001:db8::1",
            user_agent="\ud800" + "u" * 600,
            request_id="é",
            pod="p",
        )
        validator.validate(event)
        line = encode_event(event)
        assert line.isascii()
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert list(json.loads(line)) == list(helpers.schema["required"])
