"""The one error of the shared rules; each service maps it to its own domain error."""

from __future__ import annotations


class InvalidValue(ValueError):
    """A value that breaks a shared rule. ``field`` names what it was meant to be
    (``"email"``, ``"phone"``, ``"region"``); the message is for logs, not for people."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
