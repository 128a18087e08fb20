"""Revoked sessions and lockout counts in Redis, shared by every webserver replica (REDIS_URL).

Keys (after REDIS_KEY_PREFIX, `loginpod:` by default):
- `revoked:<session id>`: set on logout, expiring when the session's token would expire anyway;
- `lockout:{<username>}:failures`: failures in the window, expiring LOCKOUT_WINDOW_SECONDS after the first;
- `lockout:{<username>}:inflight`: attempts being checked now (expiring after IN_FLIGHT_TTL, should a pod die
  in the middle of one);
- `lockout:{<username>}:locked`: present while the name is locked, expiring after LOCKOUT_SECONDS.
The braces keep one name's keys in one Redis Cluster slot; each check-and-count is one Lua script, so
parallel attempts on several replicas cannot get more than LOCKOUT_THRESHOLD passwords checked.

When Redis is down both uses fail closed (podkit.sharedstore.StoreUnavailable reaches the app): a session
cannot be shown to be unrevoked, so it is not accepted; a login cannot be counted, so it is refused with
503 (for every name alike), and a logout that cannot be recorded is answered 503.
"""

from __future__ import annotations

from podkit.sharedstore import SharedStore

from webserver.sessions import Session

IN_FLIGHT_TTL = 120  # seconds: longer than any password check takes

# KEYS: failures, inflight, locked. ARGV: threshold, in-flight ttl. Returns 1 (go on) or 0 (locked out).
_BEGIN = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
local inflight = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures + inflight >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: failures, inflight, locked. ARGV: success (1/0), threshold, window seconds, lockout seconds.
# Returns 1 when this failure locked the name.
_FINISH = """
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  return 0
end
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if failures >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class SharedRevocations:
    """webserver.sessions.Revocations in Redis: a logout on one replica is seen by all."""

    def __init__(self, store: SharedStore) -> None:
        self._store = store
        self._client = store.client

    async def revoke(self, session: Session) -> None:
        key = self._store.key("revoked", session.session_id)
        await self._store.run("revocation", lambda: self._client.set(key, b"1", exat=session.expires_at))

    async def is_revoked(self, session_id: str) -> bool:
        key = self._store.key("revoked", session_id)
        return bool(await self._store.run("revocation", lambda: self._client.exists(key)))


class SharedLockout:
    """webserver.lockout.LockoutPolicy in Redis: the threshold counts failures on every replica."""

    def __init__(self, store: SharedStore, threshold: int, window_seconds: int, lockout_seconds: int) -> None:
        self._store = store
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.lockout_seconds = lockout_seconds
        self._begin = store.client.register_script(_BEGIN)
        self._finish = store.client.register_script(_FINISH)

    def _keys(self, username: str) -> list[str]:
        base = f"lockout:{{{username}}}"
        return [self._store.key(base, part) for part in ("failures", "inflight", "locked")]

    async def check_available(self) -> None:
        await self._store.run("lockout", self._store.client.ping)

    async def begin(self, username: str) -> bool:
        keys = self._keys(username)
        result = await self._store.run("lockout", lambda: self._begin(keys=keys, args=[self.threshold, IN_FLIGHT_TTL]))
        return bool(result)

    async def finish(self, username: str, *, success: bool) -> None:
        keys = self._keys(username)
        args = [1 if success else 0, self.threshold, self.window_seconds, self.lockout_seconds]
        await self._store.run("lockout", lambda: self._finish(keys=keys, args=args))

    async def locked(self, username: str) -> bool:
        key = self._keys(username)[2]
        return bool(await self._store.run("lockout", lambda: self._store.client.exists(key)))
