"""In-process :class:`~idp.ports.EphemeralStore` for one process (development, tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class MemoryStore:
    """A dict with expiry behind one lock. Not shared between processes: with more than one
    worker, configure Redis (``IDP_REDIS_URL``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str) -> tuple[str, float] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def set(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            self._data[key] = (value, self._clock() + ttl)

    def add(self, key: str, value: str, ttl: int) -> bool:
        with self._lock:
            if self._live(key):
                return False
            self._data[key] = (value, self._clock() + ttl)
            return True

    def take(self, key: str) -> str | None:
        with self._lock:
            item = self._live(key)
            if item is None:
                return None
            del self._data[key]
            return item[0]

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            item = self._live(key)
            if item is None:
                self._data[key] = ("1", self._clock() + ttl)
                return 1
            value = int(item[0]) + 1
            self._data[key] = (str(value), item[1])
            return value

    def ttl(self, key: str) -> int:
        with self._lock:
            item = self._live(key)
            return max(0, int(item[1] - self._clock() + 0.999)) if item else 0

    def ping(self) -> None:
        return None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
