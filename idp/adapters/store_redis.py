"""Redis :class:`~idp.ports.EphemeralStore`, shared by every replica.

Any Redis error becomes :class:`~idp.ports.StoreUnavailable` so that callers fail closed
(ASVS 16.5.3): no unthrottled guessing while the store is down.
"""

from __future__ import annotations

import redis

from idp.ports import StoreUnavailable

# INCR, then set the expiry only when this call created the counter: one round trip, atomic.
_INCR = """
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return v
"""


class RedisStore:
    def __init__(self, url: str, prefix: str = "idp:", timeout: float = 0.5) -> None:
        self.url = url  # the outbox's wake-up channel lives beside the store
        self.prefix = prefix
        self._prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self._incr = self._redis.register_script(_INCR)

    def _k(self, key: str) -> str:
        return self._prefix + key

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def get(self, key: str) -> str | None:
        return self._call(self._redis.get, self._k(key))

    def set(self, key: str, value: str, ttl: int) -> None:
        self._call(self._redis.set, self._k(key), value, ex=ttl)

    def add(self, key: str, value: str, ttl: int) -> bool:
        return bool(self._call(self._redis.set, self._k(key), value, ex=ttl, nx=True))

    def take(self, key: str) -> str | None:
        return self._call(self._redis.getdel, self._k(key))

    def delete(self, key: str) -> None:
        self._call(self._redis.delete, self._k(key))

    def incr(self, key: str, ttl: int) -> int:
        return int(self._call(self._incr, keys=[self._k(key)], args=[ttl]))

    def ttl(self, key: str) -> int:
        return max(0, int(self._call(self._redis.ttl, self._k(key))))

    def ping(self) -> None:
        self._call(self._redis.ping)

    def clear(self) -> None:
        """Delete this store's keys (its prefix only); for tests."""
        keys = self._call(lambda: list(self._redis.scan_iter(match=self._prefix + "*", count=500)))
        if keys:
            self._call(self._redis.delete, *keys)
