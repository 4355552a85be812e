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
