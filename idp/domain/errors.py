"""The domain exception hierarchy, mapped once to HTTP responses in :mod:`idp.web.errors`."""

from __future__ import annotations


class IdpError(Exception):
    """Base of every domain error. ``code`` is machine-readable, the message is for logs."""

    code = "error"


class ValidationError(IdpError):
    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuthenticationFailed(IdpError):
    """Unknown login, wrong password or locked account: deliberately one error."""

    code = "authentication_failed"


class AccountBlocked(AuthenticationFailed):
    """The password was right but the support desk blocked the account. Raised only after a
    correct password, so the public learns nothing about blocked accounts; the person is
    told to call the support desk. Anywhere else it is an ordinary authentication failure."""

    code = "account_blocked"


class Throttled(IdpError):
    """Too many attempts from one address; ``retry_after`` in seconds."""

    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class NotFound(IdpError):
    code = "not_found"


class Conflict(IdpError):
    code = "conflict"


class LinkingFailed(IdpError):
    """The linking service refused or could not answer a call made for a customer.

    ``reason`` is the ``google.rpc.ErrorInfo`` reason of the contract (``TOO_MANY_ATTEMPTS``,
    ``CONCURRENT_CHANGE``, ``FLOW_NOT_FOUND``, ``FLOW_STATE``, ``FLOW_EXPIRED``,
    ``INVALID_ACCOUNT_NUMBER``…), or ``UNAVAILABLE`` when the service could not be reached
    in time; ``retry_after`` (seconds) comes with ``TOO_MANY_ATTEMPTS``. Pages turn it into
    a plain sentence; the status name never reaches a page.
    """

    code = "linking_failed"

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SigningKeyMissing(IdpError):
    """No key of ``alg`` may sign now: the provider cannot issue tokens until an operator
    creates one. The message says what to run."""

    code = "signing_key_missing"

    def __init__(self, alg: str) -> None:
        super().__init__(f"no active {alg} signing key; run `idp keys rotate --alg {alg}`")
        self.alg = alg
