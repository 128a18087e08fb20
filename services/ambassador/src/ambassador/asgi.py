"""The ASGI types the ambassador speaks, declared once (raw ASGI: no Starlette types on the request path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# One header as ASGI and httpx carry it: (name, value), bytes.
Header = tuple[bytes, bytes]
