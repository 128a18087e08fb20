"""Turn whatever a JSON line held into the XSD's fixed field list, with text that is always valid XML.

The JSON Schema types values strictly; the XSD does not (every value is bounded text), so that a malformed
event is still recorded rather than lost. This module is the only place that knows the field list and the
lengths: `tests/test_sanitize.py` checks them against contracts/login-events.xsd.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

# Field name -> maximum length in characters; `None` marks the `flag` type (true, false or empty).
FIELDS: Final[dict[str, int | None]] = {
    "event_id": 64,
    "timestamp": 64,
    "event_type": 64,
    "outcome": 64,
    "reason": 64,
    "username": 256,
    "username_truncated": None,
    "client_ip": 64,
    "user_agent": 512,
    "request_id": 128,
    "service": 64,
    "pod": 256,
}

REPLACEMENT: Final = "\ufffd"

# Everything outside XML 1.0's `Char` production: C0 controls but tab/LF/CR, surrogates (lone ones come
# from JSON escapes such as "\ud800"), U+FFFE and U+FFFF. dicttoxml copies them through unchanged.
_FORBIDDEN: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_FLAGS: Final = {True: "true", False: "false", "true": "true", "false": "false", "": ""}

Record = dict[str, str | None]


@dataclass
class Sanitized:
    """One event ready to render, and what had to change to make it so (for the metrics)."""

    record: Record
    dropped_keys: int
    sanitized_values: int


def as_text(value: Any) -> str:
    """A non-null value as text: strings as they are, booleans as true/false, anything else compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def clean_text(text: str, max_length: int) -> str:
    """`text` with the characters XML forbids replaced by U+FFFD, cut to `max_length` characters."""
    if _FORBIDDEN.search(text) is not None:
        text = _FORBIDDEN.sub(REPLACEMENT, text)
    return text[:max_length]


def may_hold_forbidden(json_text: str) -> bool:
    """Whether a value parsed from this JSON text can hold a character XML forbids.

    Only an escape (`\\u0000`, `\\b`, `\\ud800`...) or the character itself can put one in a value, and most
    lines have neither: `sanitize` then skips the per-value search.
    """
    return "\\" in json_text or _FORBIDDEN.search(json_text) is not None


def sanitize(event: dict[str, Any], *, check_characters: bool = True) -> Sanitized:
    """The event's fields in the XSD's order; missing ones are None (an empty element), unknown ones dropped.

    Pass `check_characters=False` only when `may_hold_forbidden` said no for the event's JSON text.
    """
    record: Record = {}
    changed = 0
    for name, max_length in FIELDS.items():
        value = event.get(name)
        if value is None:
            record[name] = None
        elif max_length is None:
            # `isinstance` first: 1 == True, so a bare dict lookup would take the number 1 for a flag.
            record[name] = _FLAGS.get(value, "") if isinstance(value, bool | str) else ""
            changed += not isinstance(value, bool) and record[name] != value
        elif type(value) is str:
            if check_characters or len(value) > max_length:
                record[name] = text = clean_text(value, max_length)
                changed += text != value
            else:
                record[name] = value
        else:
            record[name] = clean_text(as_text(value), max_length)
            changed += 1
    dropped = sum(1 for name in event if name not in FIELDS)
    return Sanitized(record, dropped, changed)
