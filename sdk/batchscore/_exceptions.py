"""Every error the SDK raises, in one tree rooted at :class:`BatchscoreError`.

::

    BatchscoreError
    ├── APIError                         the server could not be reached or answered with an error
    │   ├── APIConnectionError           no answer: connection refused, reset, DNS, ...
    │   │   ├── APITimeoutError          no answer in time
    │   │   └── IncompleteExportError    a results export ended without its end record (or miscounted)
    │   ├── APIResponseValidationError   a success answer that does not match the contract
    │   └── APIStatusError               an error status; .status_code, .response, .field, .body
    │       ├── BadRequestError          400
    │       ├── AuthenticationError      401
    │       ├── PermissionDeniedError    403
    │       ├── NotFoundError            404
    │       ├── ConflictError            409
    │       ├── ExpiredError             410: the batch expired; its results and files were deleted
    │       ├── PayloadTooLargeError     413
    │       ├── UnprocessableEntityError 422
    │       ├── RateLimitError           429
    │       └── InternalServerError      >= 500
    │           └── InsufficientStorageError 507: the server's disk is full (nothing was stored)
    ├── BatchError                       a batch ended badly; .batch is the last status seen
    │   ├── BatchFailedError             state failed (the batch could not run at all)
    │   ├── BatchCanceledError           state canceled
    │   └── WaitTimeoutError             wait(timeout=...) ran out first
    ├── InvalidRecordError               a record does not match the service's inputs (checked before upload)
    ├── BatchTooLargeError               the records are over the server's body limit (checked before upload)
    └── DownloadError                    an artifact could not be written where it was asked to go
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from batchscore._models import BatchStatus, ExecutionResult


class BatchscoreError(Exception):
    """The root of every error batchscore raises."""


class APIError(BatchscoreError):
    """The server could not be reached, or it answered with an error.

    Attributes:
        message: What went wrong.
        request: The request that failed.

    """

    def __init__(self, message: str, request: httpx.Request) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """No answer from the server (connection refused or reset, name resolution, protocol error)."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""


class IncompleteExportError(APIConnectionError):
    """A results export was cut short: no end record after resuming, or its ``records`` not what arrived.

    A connection-level failure (a proxy or the server cut the stream), so it is retried as one: call the export
    again, or resume it from ``cursor``.

    Attributes:
        records: Record lines received (and given to the caller) before the export stopped.
        cursor: The last whole record's cursor: pass it as ``since`` to resume after it.

    """

    def __init__(self, message: str, request: httpx.Request, records: int, cursor: str) -> None:
        super().__init__(message, request)
        self.records = records
        self.cursor = cursor


class APIResponseValidationError(APIError):
    """A success answer that does not match the contract, even read leniently (not the server this client is for?).

    Attributes:
        response: The answer, when there was one.

    """

    def __init__(self, message: str, response: httpx.Response | None) -> None:
        request = response.request if response is not None else httpx.Request("GET", "http://unknown.invalid/")
        super().__init__(message, request)
        self.response = response


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes:
        status_code: The HTTP status.
        response: The response.
        body: The parsed JSON body, when it was JSON.
        field: The offending parameter or body field the server named, if any.

    """

    status_code: int

    def __init__(self, message: str, response: httpx.Response, body: Any) -> None:
        super().__init__(message, response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.field: str | None = body.get("field") if isinstance(body, dict) else None


class BadRequestError(APIStatusError):
    """400: the request is malformed or a field is invalid (``.field`` names it)."""


class AuthenticationError(APIStatusError):
    """401: wrong credentials, or a token that is missing, expired, tampered with or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the user's role does not allow this, or the service belongs to another user."""


class NotFoundError(APIStatusError):
    """404: no such service, version, execution, record or file (or not visible to this user)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state (existing version, reused Idempotency-Key, ...)."""


class ExpiredError(APIStatusError):
    """410: the batch expired (its ``expires_at`` passed): its results and files were deleted, its summary stays.

    ``status()`` still answers, with ``expired`` true and no results; files, a retry and the export are gone.
    """


class PayloadTooLargeError(APIStatusError):
    """413: the body is over the server's size limit."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well formed but cannot be processed (code that does not compile, ...)."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class InsufficientStorageError(InternalServerError):
    """507: the server has no space left to store the request (nothing was stored; it is not retried)."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: ExpiredError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """Map an error response to its exception class: the one place statuses become exceptions.

    Args:
        response: A response with a status of 400 or more (its body must have been read).

    Returns:
        The exception to raise, carrying the server's message and field.

    """
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    message = body.get("message") if isinstance(body, dict) else None
    text = f"{response.status_code} {response.reason_phrase}: {message or str(body)[:500] or 'no details'}"
    if response.status_code == 507:
        return InsufficientStorageError(text, response, body)
    if response.status_code >= 500:
        return InternalServerError(text, response, body)
    return _STATUS_ERRORS.get(response.status_code, APIStatusError)(text, response, body)


class BatchError(BatchscoreError):
    """A batch did not end as hoped.

    Attributes:
        batch: The last status seen (state, counters and the results fetched so far).

    """

    def __init__(self, message: str, batch: BatchStatus) -> None:
        super().__init__(message)
        self.batch = batch


class BatchFailedError(BatchError):
    """The batch ended in state ``failed``: it could not run at all (``batch.error_message`` says why)."""


class BatchCanceledError(BatchError):
    """The batch ended in state ``canceled``."""


class WaitTimeoutError(BatchError):
    """``wait(timeout=...)`` ran out before the batch finished; the batch goes on running."""


class WebhookVerificationError(BatchscoreError):
    """``batchscore.webhooks.verify`` refused an event: missing header, stale timestamp or no matching signature."""


class InvalidRecordError(BatchscoreError, ValueError):
    """A record does not match the service's inputs.

    Attributes:
        index: The record's position in the batch.
        field: The offending input (column).

    """

    def __init__(self, message: str, index: int | None, field: str | None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class DownloadError(BatchscoreError):
    """An artifact could not be written where it was asked to go (missing folder, unsafe name, ...)."""


class BatchTooLargeError(BatchscoreError):
    """The records, encoded, are over the server's body limit; nothing was sent.

    Attributes:
        size: The body's bytes.
        limit: The server's limit (``GET /status``'s ``details.maxBodyBytes``).
        split_rows: Rows a batch may hold to stay under the limit (e.g. for ``--split-rows``).

    """

    def __init__(self, message: str, *, size: int, limit: int, split_rows: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit
        self.split_rows = split_rows


class ServiceError(BatchscoreError):
    """An execution failed in the service itself (its snapshot, ``initCode`` or code), and an output was asked for.

    Attributes:
        error_message: The service's own error message (with its traceback), as the server reported it.
        result: The failed execution.

    """

    def __init__(self, message: str, result: ExecutionResult) -> None:
        super().__init__(message)
        self.error_message = result.error_message
        self.result = result


class UndefinedNameWarning(UserWarning):
    """A published function uses names the service will not have (a helper or global left behind): ``NameError``.

    Not an error: the name may come from the service's ``init`` or its models. Pass the helpers to
    ``publish_service(..., helpers=[...])`` to publish their source with the function.
    """
