"""Twins of :class:`~idp.ports.Waker`: how a commit that added outbox rows wakes the worker.

* :class:`RedisWaker`: ``LPUSH`` a token on ``<prefix>outbox:wake:<channel>`` (trimmed to one,
  so a burst of commits with no worker up leaves one token, not thousands); the worker
  ``BLPOP``s it. Works across processes and replicas: one token wakes one worker, the others
  still poll.
* :class:`LocalWaker`: a ``threading.Event`` per channel, for a worker in the same process
  (tests, the embedded profile). Without Redis and in another process, the worker polls.

A failed wake is logged and forgotten: the worker's poll delivers the row a moment later.
"""

from __future__ import annotations

import logging
import threading

import redis

log = logging.getLogger(__name__)


class LocalWaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def _event(self, channel: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(channel, threading.Event())

    def wake(self, channel: str) -> None:
        self._event(channel).set()

    def wait(self, channel: str, timeout: float) -> bool:
        event = self._event(channel)
        woken = event.wait(timeout)
        event.clear()  # a wake arriving while the batch runs sets it again: nothing is lost
        return woken


class RedisWaker:
    def __init__(self, url: str, prefix: str = "idp:", timeout: float = 0.5) -> None:
        self._prefix = prefix
        self._quick = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # BLPOP holds the connection for up to its timeout: a separate client that waits longer.
        self._blocking = redis.Redis.from_url(url, socket_connect_timeout=timeout)

    def _key(self, channel: str) -> str:
        return f"{self._prefix}outbox:wake:{channel}"

    def wake(self, channel: str) -> None:
        key = self._key(channel)
        try:
            with self._quick.pipeline() as pipe:
                pipe.lpush(key, "1").ltrim(key, 0, 0).expire(key, 60).execute()
        except redis.RedisError as exc:
            log.warning("outbox wake-up not published: %s", type(exc).__name__)

    def wait(self, channel: str, timeout: float) -> bool:
        try:
            return self._blocking.blpop([self._key(channel)], timeout=timeout) is not None
        except redis.RedisError as exc:
            log.warning("outbox wake-up channel unavailable: %s", type(exc).__name__)
            threading.Event().wait(timeout)  # then poll as without Redis
            return False
