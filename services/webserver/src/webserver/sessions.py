"""Stateless session tokens and CSRF tokens, both HMAC-SHA256 signed with the session key.

A session token is `base64url(json payload).base64url(mac)`; the payload holds the username, a random
session id and the expiry. Nothing is stored per session except, after a logout, the session id in a
revocation set kept until the token would have expired anyway: in this process's memory by default (a
restart forgets it, and the TTL bounds the damage), or in Redis shared by every replica when REDIS_URL is
set (webserver.sharedstate). Tokens never appear in logs or events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_SESSION_PURPOSE = b"loginpod.session.v1\x00"
_CSRF_PURPOSE = b"loginpod.csrf.v1\x00"
MAX_TOKEN_CHARS = 1024


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: bytes, message: str) -> str:
    return _b64encode(hmac.new(key, purpose + message.encode("ascii"), hashlib.sha256).digest())


@dataclass(frozen=True)
class Session:
    username: str
    session_id: str
    expires_at: int


class Revocations(Protocol):
    """Where logged-out session ids are kept until their expiry: this process, or a store all replicas share.

    Both methods may raise podkit.sharedstore.StoreUnavailable (the shared store is down).
    """

    async def revoke(self, session: Session) -> None: ...

    async def is_revoked(self, session_id: str) -> bool: ...


class RevokedSessions:
    """Session ids logged out before their expiry, in memory; an entry is dropped once the token is expired."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._until: dict[str, int] = {}
        self._clock = clock

    async def revoke(self, session: Session) -> None:
        self._prune()
        self._until[session.session_id] = session.expires_at

    async def is_revoked(self, session_id: str) -> bool:
        return session_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def _prune(self) -> None:
        now = self._clock()
        for session_id in [s for s, until in self._until.items() if until <= now]:
            del self._until[session_id]


class SessionCodec:
    """Issues and checks session tokens."""

    def __init__(
        self,
        key: bytes,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        revoked: Revocations | None = None,
    ) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self.revoked: Revocations = revoked if revoked is not None else RevokedSessions(clock)

    def issue(self, username: str) -> tuple[Session, str]:
        session = Session(username, secrets.token_urlsafe(16), int(self._clock()) + self.ttl_seconds)
        payload = _b64encode(
            json.dumps({"u": session.username, "sid": session.session_id, "exp": session.expires_at}).encode()
        )
        return session, f"{payload}.{_mac(self._key, _SESSION_PURPOSE, payload)}"

    async def read(self, token: str | None) -> Session | None:
        """The session of a token that is well signed, unexpired and not revoked; otherwise None.

        Raises StoreUnavailable when the revocation store cannot answer (the caller fails closed).
        """
        session = self.decode(token)
        if session is None or await self.revoked.is_revoked(session.session_id):
            return None
        return session

    def decode(self, token: str | None) -> Session | None:
        """The session of a token that is well signed and unexpired (revocation not checked); otherwise None."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        payload, sep, mac = token.partition(".")
        if not sep or not hmac.compare_digest(mac, _mac(self._key, _SESSION_PURPOSE, payload)):
            return None
        try:
            data = json.loads(_b64decode(payload))
            session = Session(str(data["u"]), str(data["sid"]), int(data["exp"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires_at <= self._clock():
            return None
        return session


class CsrfTokens:
    """Signed double-submit tokens: the `csrf` cookie and the form's hidden field must be equal and signed.

    The signature stops a token planted as a cookie by a sibling domain from being accepted.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def new(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{_mac(self._key, _CSRF_PURPOSE, nonce)}"

    def valid(self, token: str | None) -> bool:
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return False
        nonce, sep, mac = token.partition(".")
        return bool(sep) and hmac.compare_digest(mac, _mac(self._key, _CSRF_PURPOSE, nonce))

    def matches(self, cookie: str | None, field: str | None) -> bool:
        if cookie is None or field is None or not self.valid(cookie):
            return False
        return hmac.compare_digest(cookie.encode("utf-8", "surrogatepass"), field.encode("utf-8", "surrogatepass"))
