"""The SDK's log records, under the ``batchscore`` logger (configure it with :mod:`logging` to see them).

Each request the clients send: its method, path, status and time at DEBUG; each retry at INFO; a request given up
after its retries at WARNING. Only methods, paths (no query strings) and statuses are logged: never headers or
bodies, so tokens and passwords never reach a log.
"""

from __future__ import annotations

import logging
import time

import httpx

logger = logging.getLogger("batchscore")
# A library leaves handlers to the application: without this, Python's last-resort handler would print the SDK's
# warnings on stderr (in the middle of the CLI's output) in programs that never configured logging.
logger.addHandler(logging.NullHandler())


def _target(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


def log_answer(request: httpx.Request, response: httpx.Response | None, started: float) -> None:
    """One attempt of a request: its status (or the connection error) and how long it took, at DEBUG."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    outcome = str(response.status_code) if response is not None else "no answer"
    logger.debug("%s -> %s in %.3f s", _target(request), outcome, time.monotonic() - started)


def log_retry(request: httpx.Request, reason: str, retry: int, max_retries: int, delay: float) -> None:
    """A retry about to be made, at INFO."""
    logger.info("%s: %s; retry %d of %d in %.2f s", _target(request), reason, retry, max_retries, delay)


def log_given_up(request: httpx.Request, reason: str, retries: int) -> None:
    """A request that failed after its retries (none left, or none allowed), at WARNING."""
    logger.warning("%s: %s after %d retries", _target(request), reason, retries)
