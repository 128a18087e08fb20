"""The ambassador's own responses: small JSON bodies that carry the request id.

Every refusal ({"error": ..., "request_id": ...}) and every probe answer goes through `send_json`, or, for
the HTTP layer's refusals written before the app runs (ambassador.protocol), `refusal_bytes`, so the client
always gets the id it can quote, in the body and in X-Request-ID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ambassador.asgi import Header, Send

JSON = b"application/json"


def error_body(error: str, request_id: bytes) -> bytes:
    return json_body({"error": error, "request_id": request_id.decode()})


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def refusal_bytes(status: int, reason: bytes, error: str, request_id: bytes) -> bytes:
    """A whole refusal on the wire, with the headers `send_json` gives, closing the connection."""
    body = error_body(error, request_id)
    return (
        b"HTTP/1.1 %d %b\r\ncontent-type: %b\r\ncontent-length: %d\r\ncache-control: no-store\r\n"
        b"x-request-id: %b\r\nconnection: close\r\n\r\n%b" % (status, reason, JSON, len(body), request_id, body)
    )


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
    body = json_body(payload)
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
