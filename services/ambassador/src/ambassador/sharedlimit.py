"""The login rate limit's token buckets in Redis, one per client shared by every ambassador replica.

Key `ratelimit:<client ip>` (after REDIS_KEY_PREFIX) holds the bucket as a hash (tokens, time of the last
update in ms), expiring once it would be full again. One Lua script refills and takes a token atomically,
with Redis's own clock (the replicas' clocks never meet), so N replicas grant a client LOGIN_BURST logins
and LOGIN_RATE_PER_MINUTE after that in all, not N times as many.

When Redis is down the limit fails open: the login is forwarded (the webserver's lockout still guards every
account), the failure is counted in `loginpod_ambassador_shared_store_errors_total{use="ratelimit"}` and the
outage logged once (podkit.sharedstore). Login rate limiting is a brake on guessing, not an access
decision: refusing every login while Redis is down would turn a Redis outage into a login outage.
"""

from __future__ import annotations

from podkit.sharedstore import SharedStore, StoreUnavailable

# KEYS: the bucket. ARGV: rate (tokens per ms), burst. Returns the ms to wait (0: a token was taken).
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now_ms - tonumber(state[2])) * rate)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return wait
"""


class SharedRateLimiter:
    """ambassador.ratelimit.RateLimiter in Redis; fails open (0.0) when Redis is down."""

    def __init__(self, store: SharedStore, rate_per_minute: float, burst: int) -> None:
        self._store = store
        self._rate_per_ms = rate_per_minute / 60_000.0
        self._burst = burst
        self._script = store.client.register_script(_TAKE)

    async def take(self, client: str) -> float:
        key = self._store.key("ratelimit", client)
        try:
            wait_ms = await self._store.run(
                "ratelimit", lambda: self._script(keys=[key], args=[repr(self._rate_per_ms), self._burst])
            )
        except StoreUnavailable:
            return 0.0  # fail open: counted and logged by the store
        return int(wait_ms) / 1000.0

    async def aclose(self) -> None:
        await self._store.aclose()
