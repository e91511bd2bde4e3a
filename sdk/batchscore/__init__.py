"""batchscore: publish a Python function and model as a web service, consume it one call at a time or in batches.

This package is the hand-written SDK. It is built on the low-level client generated from the contract
(``batchscore_client``) and never the other way round.

Example:
    >>> import batchscore
    >>> client = batchscore.Client("http://127.0.0.1:12800", username="admin", password=pw)
    >>> svc = client.get_service("mtService", "v1.0.0")
    >>> batch = svc.batch(records, parallel_count=5).start()
    >>> results = batch.wait()
    >>> results.to_frame()

"""

from batchscore import webhooks
from batchscore._client import AsyncClient, Client
from batchscore._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchCanceledError,
    BatchError,
    BatchFailedError,
    BatchscoreError,
    BatchTooLargeError,
    ConflictError,
    DownloadError,
    ExpiredError,
    IncompleteExportError,
    InsufficientStorageError,
    InternalServerError,
    InvalidRecordError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceError,
    UndefinedNameWarning,
    UnprocessableEntityError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from batchscore._http import Tokens
from batchscore._models import (
    BatchOptions,
    BatchState,
    BatchStatus,
    ExecutionAttempt,
    ExecutionResult,
    Parameter,
    ServiceInfo,
)
from batchscore._retry import PollPolicy, RetryPolicy
from batchscore._retryable import Retryable
from batchscore._service import AsyncBatch, AsyncService, Batch, Service
from batchscore._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBatch",
    "AsyncClient",
    "AsyncService",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchCanceledError",
    "BatchError",
    "BatchFailedError",
    "BatchOptions",
    "BatchState",
    "BatchStatus",
    "BatchTooLargeError",
    "BatchscoreError",
    "Client",
    "ConflictError",
    "DownloadError",
    "ExecutionAttempt",
    "ExecutionResult",
    "ExpiredError",
    "IncompleteExportError",
    "InsufficientStorageError",
    "InternalServerError",
    "InvalidRecordError",
    "NotFoundError",
    "Parameter",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimitError",
    "RetryPolicy",
    "Retryable",
    "Service",
    "ServiceError",
    "ServiceInfo",
    "Tokens",
    "UndefinedNameWarning",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]
