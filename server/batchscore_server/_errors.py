"""The one error type route code raises; the app turns it into the contract's ``Error`` body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, a one-sentence message and the offending field.

    Args:
        status: The HTTP status code (4xx or 5xx).
        message: What is wrong, in one sentence.
        field: The offending parameter, header or body field.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``).

    """

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The contract's ``Error`` object for this error."""
        body: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def not_found(what: str, field: str) -> ApiError:
    """A 404 for something that does not exist or is not visible to the caller."""
    return ApiError(404, f"{what} not found", field)
