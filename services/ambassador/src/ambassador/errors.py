"""The ambassador's own responses: small JSON bodies that carry the request id.

Every refusal ({"error": ..., "request_id": ...}) and every probe answer goes through `send_json`, so the
client always gets the id it can quote, in the body and in X-Request-ID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ambassador.asgi import Header, Send

JSON = b"application/json"


async def send_json(
    send: Send,
    status: int,
    payload: dict[str, Any],
    request_id: bytes,
    headers: Sequence[Header] = (),
    *,
    head: bool = False,
) -> int:
    """Sends one complete JSON response; returns the body size (0 for HEAD, which gets no body)."""
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON),
                (b"content-length", b"%d" % len(body)),
                (b"cache-control", b"no-store"),
                (b"x-request-id", request_id),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
    return 0 if head else len(body)


async def send_error(
    send: Send, status: int, error: str, request_id: bytes, headers: Sequence[Header] = (), *, head: bool = False
) -> int:
    """A refusal: {"error": error, "request_id": id}."""
    return await send_json(
        send, status, {"error": error, "request_id": request_id.decode()}, request_id, headers, head=head
    )
