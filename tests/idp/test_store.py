"""The ephemeral store port (idp.ports.EphemeralStore): its two adapters behave the same.

Every behavioural test runs on the in-process MemoryStore (with an injected clock) and on a
real RedisStore under a key prefix of its own, so tests never see each other's keys.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.ports import StoreUnavailable
from tests.conftest import REDIS_URL
from tests.support import wait_for

THREADS = 16


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", "redis"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(kind, clock):
    if kind == "memory":
        yield MemoryStore(clock=clock)
        return
    real = RedisStore(REDIS_URL, prefix=f"idp-test-store:{uuid.uuid4().hex}:")
    real.clear()
    yield real
    real.clear()


def run_together(n: int, fn) -> list:
    """Run ``fn(i)`` in ``n`` threads released at the same moment; return the results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(5)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


# --- basic operations -------------------------------------------------------------------


def test_get_set_ttl(store):
    assert store.get("absent") is None
    assert store.ttl("absent") == 0

    store.set("k", "v1", 30)
    assert store.get("k") == "v1"
    assert 29 <= store.ttl("k") <= 30

    store.set("k", "v2", 100)  # overwrites the value and the TTL
    assert store.get("k") == "v2"
    assert 99 <= store.ttl("k") <= 100

    store.delete("k")
    assert store.get("k") is None
    assert store.ttl("k") == 0
    store.delete("k")  # deleting an absent key is not an error


def test_values_are_strings(store):
    store.set("unicode", "значение ✓", 30)
    assert store.get("unicode") == "значение ✓"


def test_keys_are_independent(store):
    store.set("a", "1", 30)
    store.set("b", "2", 30)
    assert store.take("a") == "1"
    assert store.get("b") == "2"


def test_add_is_set_if_absent(store):
    assert store.add("once", "first", 30) is True
    assert store.add("once", "second", 300) is False
    assert store.get("once") == "first"
    assert store.ttl("once") <= 30  # the refused add did not touch the TTL either
    store.delete("once")
    assert store.add("once", "third", 30) is True
    assert store.get("once") == "third"


def test_add_under_contention_creates_once(store):
    results = run_together(THREADS, lambda i: store.add("race", str(i), 30))
    assert results.count(True) == 1
    winner = results.index(True)
    assert store.get("race") == str(winner)


def test_take_returns_value_once(store):
    store.set("code", "secret", 30)
    assert store.take("code") == "secret"
    assert store.take("code") is None
    assert store.get("code") is None
    assert store.take("never-set") is None


def test_take_under_contention_gives_value_to_exactly_one_thread(store):
    for round_ in range(10):
        key = f"one-time-{round_}"
        store.set(key, f"value-{round_}", 30)
        results = run_together(THREADS, lambda i, key=key: store.take(key))
        winners = [r for r in results if r is not None]
        assert winners == [f"value-{round_}"], results
        assert store.get(key) is None


def test_incr_counts_from_one(store):
    assert store.incr("n", 60) == 1
    assert store.incr("n", 60) == 2
    assert store.incr("n", 60) == 3
    assert store.get("n") == "3"


def test_incr_is_atomic_under_threads(store):
    per_thread = 50

    def bump(_i: int) -> list[int]:
        return [store.incr("counter", 60) for _ in range(per_thread)]

    results = run_together(THREADS, bump)
    seen = sorted(v for batch in results for v in batch)
    total = THREADS * per_thread
    # Every increment returned a distinct value: no lost update, no duplicate.
    assert seen == list(range(1, total + 1))
    assert store.get("counter") == str(total)
    assert 1 <= store.ttl("counter") <= 60


def test_incr_ttl_is_set_at_creation_and_not_extended(store):
    store.incr("fails", 100)
    store.incr("fails", 1000)
    store.incr("fails", 5000)
    assert 1 <= store.ttl("fails") <= 100


# --- expiry ---------------------------------------------------------------------------


def test_memory_expiry_with_clock():
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.set("s", "v", 10)
    assert store.add("a", "v", 10)
    store.incr("c", 10)
    clock.advance(9)
    assert store.get("s") == "v"
    assert store.ttl("s") == 1
    clock.advance(1)  # expiry is at exactly set-time + ttl
    assert store.get("s") is None
    assert store.ttl("s") == 0
    assert store.take("s") is None
    assert store.add("a", "again", 10) is True  # an expired marker no longer blocks add
    assert store.incr("c", 10) == 1  # an expired counter restarts


def test_memory_incr_ttl_starts_at_creation():
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    assert store.incr("fails", 10) == 1
    clock.advance(6)
    assert store.incr("fails", 10) == 2
    assert store.ttl("fails") == 4  # not reset to 10 by the second increment
    clock.advance(4)
    assert store.get("fails") is None
    assert store.incr("fails", 10) == 1


def test_memory_ttl_rounds_up():
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.set("k", "v", 10)
    clock.advance(9.5)
    assert store.ttl("k") == 1  # half a second left is still reported as alive


def test_redis_expiry_for_real():
    prefix = f"idp-test-store:{uuid.uuid4().hex}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        store.set("s", "v", 1)
        assert store.add("a", "v", 1) is True
        assert store.incr("c", 1) == 1
        raw = redis.Redis.from_url(REDIS_URL)
        keys = [prefix + name for name in ("s", "a", "c")]
        assert raw.exists(*keys) == 3
        wait_for(lambda: raw.exists(*keys) == 0, what="Redis to expire the keys")
        assert store.get("s") is None
        assert store.ttl("s") == 0
        assert store.take("s") is None
        assert store.add("a", "again", 30) is True
        assert store.incr("c", 30) == 1
    finally:
        store.clear()


def test_redis_keys_carry_the_prefix():
    prefix = f"idp-test-store:{uuid.uuid4().hex}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    raw = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        store.set("k", "v", 30)
        assert raw.get(prefix + "k") == "v"
        store.clear()
        assert raw.get(prefix + "k") is None
    finally:
        store.clear()
        raw.close()


# --- fail closed ------------------------------------------------------------------------

PORT_METHODS = [
    ("get", ("k",)),
    ("set", ("k", "v", 30)),
    ("add", ("k", "v", 30)),
    ("take", ("k",)),
    ("delete", ("k",)),
    ("incr", ("k", 30)),
    ("ttl", ("k",)),
    ("ping", ()),
]


@pytest.mark.parametrize(("method", "args"), PORT_METHODS, ids=[m for m, _ in PORT_METHODS])
def test_unreachable_redis_raises_store_unavailable(method, args):
    store = RedisStore("redis://127.0.0.1:1/0", prefix="idp-test-store:closed:")
    with pytest.raises(StoreUnavailable):
        getattr(store, method)(*args)


def test_redis_calls_are_bounded_by_short_timeouts():
    """Fail closed *quickly*: connecting and every reply are bounded (0.5 s by default), so a
    Redis that accepts and never answers costs a request half a second, not a worker."""
    store = RedisStore("redis://127.0.0.1:1/0", prefix="idp-test-store:closed:")
    kwargs = store._redis.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.5
    assert kwargs["socket_timeout"] == 0.5


def test_silent_redis_raises_store_unavailable():
    """A peer that accepts the connection and never answers: the read timeout ends the call."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix="p:", timeout=0.2)
        with pytest.raises(StoreUnavailable):
            store.get("k")
    finally:
        silent.close()


def test_unreachable_redis_clear_raises_store_unavailable():
    """``clear`` is a test helper but part of the adapter: it too must not leak redis errors."""
    store = RedisStore("redis://127.0.0.1:1/0", prefix="idp-test-store:closed:")
    with pytest.raises(StoreUnavailable):
        store.clear()


def test_store_unavailable_is_a_runtime_error():
    assert issubclass(StoreUnavailable, RuntimeError)
