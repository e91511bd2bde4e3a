"""``Retryable``: the exception service code raises to have a batch run its record again."""

from __future__ import annotations

__all__ = ["Retryable"]


class Retryable(Exception):
    """Raise it inside published service code to mark a record's failure as worth another try.

    A batch started with ``item_retries`` (``itemRetries``) runs a record again, after a backoff of 1 s doubling
    up to 60 s, when its code raised this exception (or a subclass) - for a flaky dependency, say. Any other
    exception of the code is not retried; a dead worker is, and a timeout only with ``retry_timeouts``. Each
    earlier run's error stays in the record's :attr:`ExecutionResult.attempts`.

    It is not a :class:`BatchscoreError`: the SDK never raises it. The server recognises it by its name and
    module (a class named ``Retryable`` from a ``batchscore`` module anywhere in the exception's MRO), so it
    works whichever version of the SDK the workers have installed.

    Example:
        >>> import batchscore
        >>> def fetch(url):
        ...     try:
        ...         return download(url)
        ...     except ConnectionError as error:
        ...         raise batchscore.Retryable(f"{url} did not answer") from error

    """


# Tracebacks (and the records' error messages) name it as users write it: batchscore.Retryable.
Retryable.__module__ = "batchscore"
