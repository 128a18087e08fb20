"""Deciding one login attempt: which reason it fails for, with the same password work in every case.

Every path through `authenticate` runs exactly one argon2 verify with the configured parameters, so
neither the answer nor its timing tells an unknown name from a wrong password or a locked account. Under
overload the attempt is refused before any of it (Overloaded, from the admission queue): it counts toward
no lockout, and the answer is the same 503 whatever the name.
"""

from __future__ import annotations

import unicodedata

from webserver.events import MAX_USERNAME, Reason
from webserver.lockout import LockoutPolicy
from webserver.passwords import PasswordChecker
from webserver.users import UsersStore

# Control, format (bidi overrides, zero-width), surrogate and line/paragraph separator characters.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def invalid_username(username: str) -> bool:
    """Empty, over-long, or holding characters no name has and log injection would use."""
    return (
        not username
        or len(username) > MAX_USERNAME
        or any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in username)
    )


class Authenticator:
    def __init__(self, users: UsersStore, checker: PasswordChecker, lockout: LockoutPolicy) -> None:
        self.users = users
        self.checker = checker
        self.lockout = lockout

    async def authenticate(self, username: str, password: str, *, client: str = "") -> Reason | None:
        """None when the password is right; otherwise why it failed (for the event, never for the client).

        Raises Overloaded (webserver.admission) when no verify slot is free and the queue is full. Raises
        StoreUnavailable, before any password work, when a shared lockout store is down: for every name, so
        that the answer does not tell a known name from an unknown one.
        """
        async with self.checker.admitted(client):
            return await self._decide(username, password)

    async def _decide(self, username: str, password: str) -> Reason | None:
        self.users.refresh()
        if invalid_username(username):
            await self.checker.verify_admitted(None, password)
            return "invalid_username"
        stored_hash = self.users.get_hash(username)
        if stored_hash is None:
            await self.lockout.check_available()
            await self.checker.verify_admitted(None, password)
            return "unknown_user"
        if not await self.lockout.begin(username):
            await self.checker.verify_admitted(None, password)
            return "locked_out"
        matched = False
        try:
            matched = await self.checker.verify_admitted(stored_hash, password)
        finally:
            await self.lockout.finish(username, success=matched)
        return None if matched else "bad_password"
