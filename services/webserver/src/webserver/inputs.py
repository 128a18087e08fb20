"""Reading what a client POSTed: a size-capped body, as a urlencoded form or a JSON object, and nothing else.

Every problem becomes a `Malformed` with the HTTP status to answer and, when it could be read, the
submitted username (the event records it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

Kind = Literal["form", "json"]
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_FORM_FIELDS = 16


class Malformed(Exception):
    def __init__(self, status: int, problem: str, *, kind: Kind | None = None, username: str | None = None) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.kind = kind
        self.username = username


@dataclass(frozen=True)
class Submission:
    kind: Kind
    fields: dict[str, Any]

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


def content_kind(content_type: str | None) -> Kind | None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return "form" if media_type == FORM else "json" if media_type == JSON else None


async def read_body(request: Request, limit: int, kind: Kind | None = None) -> bytes:
    """The body, refusing (413) anything over `limit` bytes before or while reading it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Malformed(413, "body too large", kind=kind)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Malformed(413, "body too large", kind=kind)
            chunks.append(chunk)
    except ClientDisconnect:
        raise Malformed(400, "client disconnected", kind=kind) from None
    return b"".join(chunks)


def parse_submission(content_type: str | None, body: bytes, *, empty_json_ok: bool = False) -> Submission:
    kind = content_kind(content_type)
    if kind is None:
        raise Malformed(415, "unsupported content type")
    if kind == "form":
        return Submission("form", _parse_form(body))
    if empty_json_ok and not body.strip():
        return Submission("json", {})
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise Malformed(422, "body is not JSON", kind="json") from None
    if not isinstance(value, dict):
        raise Malformed(422, "body is not a JSON object", kind="json")
    return Submission("json", value)


def _parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="replace")
    except ValueError:  # not UTF-8 (browsers percent-encode), or too many fields
        raise Malformed(422, "form is not readable", kind="form") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            # A repeated field is ambiguous; keep the first username only to record it.
            raise Malformed(422, f"field {name!r} repeated", kind="form", username=_first(pairs, "username"))
        fields[name] = value
    return fields


def _first(pairs: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in pairs if key == name), None)


def credentials(submission: Submission) -> tuple[str, str]:
    """(username, password) from a login submission; both must be present and be strings."""
    username = submission.text("username")
    password = submission.text("password")
    if username is None or password is None:
        raise Malformed(422, "username and password must be strings", kind=submission.kind, username=username)
    return username, password
