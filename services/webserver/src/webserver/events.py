"""The login event: its fields and reasons (docs/design.md, contracts/login-event.schema.json), built and encoded.

One event is one line of ASCII JSON with the contract's fields in order; strings are cut to the schema's
lengths. Appending the line to the events file is webserver.eventwriter's job.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

SERVICE = "webserver"
MAX_USERNAME = 256
MAX_USER_AGENT = 512
MAX_REQUEST_ID = 128

EventType = Literal["login.success", "login.failure", "logout"]
Reason = Literal[
    "unknown_user",
    "bad_password",
    "locked_out",
    "malformed_request",
    "invalid_username",
    "csrf_failed",
    "no_session",
    "audit_unavailable",
    "store_unavailable",
    "overloaded",
]

_SURROGATES = re.compile("[\ud800-\udfff]")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


def _text(value: str) -> str:
    """Lone surrogates (possible from JSON input) cannot be UTF-8: they become U+FFFD."""
    return _SURROGATES.sub("\ufffd", value)


def request_id_field(header: str | None) -> str | None:
    """X-Request-ID when it is printable ASCII, capped at 128 characters; otherwise null."""
    if not header or not _PRINTABLE_ASCII.fullmatch(header):
        return None
    return header[:MAX_REQUEST_ID]


def user_agent_field(header: str | None) -> str | None:
    return None if header is None else _text(header[:MAX_USER_AGENT])


def build_event(
    *,
    event_type: EventType,
    reason: Reason | None,
    username: str | None,
    client_ip: str,
    user_agent: str | None,
    request_id: str | None,
    pod: str,
) -> dict[str, Any]:
    """One event with the fields in the contract's order; strings are cut to the schema's lengths."""
    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event_type": event_type,
        "outcome": "success" if reason is None else "failure",
        "reason": reason,
        "username": None if username is None else _text(username[:MAX_USERNAME]),
        "username_truncated": username is not None and len(username) > MAX_USERNAME,
        "client_ip": client_ip[:64],
        "user_agent": user_agent_field(user_agent),
        "request_id": request_id_field(request_id),
        "service": SERVICE,
        "pod": pod,
    }


def encode_event(event: dict[str, Any]) -> bytes:
    """One line of ASCII JSON: non-ASCII is escaped, so no byte of a value can look like a line break."""
    return json.dumps(event, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
