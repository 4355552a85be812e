"""Sign-in throttling keyed on the account and on the client address.

* Per account: ``max_failures`` attempts are checked freely; the last of them locks the
  account for a window, after which one more attempt is checked and the next window is
  twice as long, up to ``lockout_max`` (never permanent, so no lasting lockout-DoS). The
  counter is incremented *before* the password is checked, so parallel guesses at the
  threshold cannot slip through
  (checklist items 30, 31). NIST SP 800-63B §5.2.2 caps consecutive failures at 100; the
  growing window keeps far below that.
* Per address: failed attempts from one address in a window; past the limit the address gets
  HTTP 429 whatever account it names (password spraying, checklist item 32).

Any store error propagates as :class:`~idp.ports.StoreUnavailable`: no store, no guessing.
"""

from __future__ import annotations

import hashlib

from idp.adapters.metrics_twin import NullMetrics
from idp.domain.errors import Throttled
from idp.ports import EphemeralStore, Metrics

ACCOUNT_WINDOW = 12 * 3600


def _key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(
        self,
        store: EphemeralStore,
        max_failures: int = 10,
        lockout_base: int = 30,
        lockout_max: int = 3600,
        address_max: int = 50,
        address_window: int = 900,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NullMetrics()
        self._store = store
        self._max = max_failures
        self._base = lockout_base
        self._cap = lockout_max
        self._address_max = address_max
        self._address_window = address_window

    def check_address(self, address: str) -> None:
        key = f"login:addr:{_key(address)}"
        count = int(self._store.get(key) or 0)
        if count >= self._address_max:
            raise Throttled(max(1, self._store.ttl(key)))

    def admit(self, account: str) -> bool:
        """Reserve one attempt on ``account``; False when it is locked out.

        Every attempt is counted, refused ones included. The attempt that reaches the limit
        sets a lock first, so whatever its outcome no other attempt is checked until the
        window ends; each new lock doubles the window.
        """
        key = _key(account)
        lock = f"login:lock:{key}"
        attempts = self._store.incr(f"login:fail:{key}", ACCOUNT_WINDOW)
        if self._store.get(lock) is not None:
            return False
        if attempts < self._max:
            return True
        locks = self._store.incr(f"login:locks:{key}", ACCOUNT_WINDOW)
        window = min(self._cap, self._base * 2 ** min(locks - 1, 20))
        # Only the caller that sets the lock gets this window's single attempt.
        locked_now = self._store.add(lock, str(attempts), window)
        if locked_now:
            self._metrics.lockout()
        return locked_now

    def succeeded(self, account: str) -> None:
        key = _key(account)
        for name in ("fail", "lock", "locks"):
            self._store.delete(f"login:{name}:{key}")

    def failed(self, address: str) -> None:
        self._store.incr(f"login:addr:{_key(address)}", self._address_window)

    def failures(self, account: str) -> int:
        return int(self._store.get(f"login:fail:{_key(account)}") or 0)

    def locked_for(self, account: str) -> int:
        """Seconds left on the account's lockout; 0 when it is not locked."""
        return self._store.ttl(f"login:lock:{_key(account)}")
