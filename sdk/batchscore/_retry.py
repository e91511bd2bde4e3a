"""Pure retry and polling decisions, shared by the sync and async clients (only their I/O differs)."""

from __future__ import annotations

import email.utils
import io
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from batchscore_client.api.batch import start_batch_execution
from batchscore_client.types import File

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MIN_POLL_SECONDS = 0.1


def _idempotency_header() -> str:
    """The header the contract names for the batch start's idempotency key, as the generated client sends it."""
    marker = "batchscore-idempotency-marker"
    kwargs = start_batch_execution._get_kwargs("n", "v", body=File(payload=io.BytesIO()), idempotency_key=marker)
    return str(next(name for name, value in kwargs["headers"].items() if value == marker))


# A POST carrying this header is safe to send twice (the server answers a repeat with the first execution).
IDEMPOTENCY_HEADER = _idempotency_header()


@dataclass(frozen=True)
class RetryPolicy:
    """How requests are retried after a connection error or a 408/429/5xx answer.

    Attributes:
        max_retries: Retries after the first attempt (0 disables retrying).
        initial_delay: Delay before the first retry, in seconds; doubled each time.
        max_delay: Cap on one delay, and on a server's ``Retry-After``.

    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0


@dataclass(frozen=True)
class PollPolicy:
    """How ``wait()`` spaces its polls.

    Attributes:
        initial: First delay, in seconds.
        multiplier: Growth of the delay while nothing new arrives.
        maximum: Cap on one delay.

    """

    initial: float = 0.5
    multiplier: float = 1.5
    maximum: float = 10.0


def is_replayable(request: httpx.Request) -> bool:
    """Whether the request's body can be sent again (a one-shot streamed upload cannot)."""
    stream = request.stream
    # httpx wraps an iterable given as `content` (the generated client's File payload) in an iterator stream that
    # iterates it anew each time it is sent: replayable when the iterable says it is.
    inner = getattr(stream, "_stream", None)
    return (
        isinstance(stream, httpx.ByteStream)
        or getattr(stream, "replayable", False) is True
        or getattr(inner, "replayable", False) is True
    )


def may_retry(request: httpx.Request) -> bool:
    """Whether sending the request twice is safe: an idempotent method, or a POST with an Idempotency-Key."""
    safe = request.method in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in request.headers
    return safe and is_replayable(request)


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date) in seconds, when it sent a usable one."""
    if headers is None:
        return None
    value = httpx.Headers(headers).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # neither seconds nor an HTTP date: ignore the hint and back off as usual
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def retry_delay(policy: RetryPolicy, retry_number: int, response: httpx.Response | None, rng: random.Random) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based): the server's hint, else backoff with jitter."""
    hinted = retry_after_seconds(response.headers if response is not None else None)
    if hinted is not None:
        return min(hinted, policy.max_delay)
    backoff = min(policy.initial_delay * 2.0 ** (retry_number - 1), policy.max_delay)
    return backoff * (1 - 0.25 * rng.random())  # jitter keeps many clients from retrying in lockstep


def poll_delay(policy: PollPolicy, quiet_polls: int, hint: float | None, rng: random.Random) -> float:
    """Seconds until the next poll.

    Args:
        policy: The schedule.
        quiet_polls: Polls in a row that brought nothing new (0 right after progress, which resets the backoff).
        hint: The server's ``Retry-After``, honoured when it is given.
        rng: Source of jitter.

    Returns:
        The delay, within ``[0, policy.maximum]``.

    """
    if hint is not None:
        # A floor keeps a server's "Retry-After: 0" from turning the wait into a busy loop.
        return min(max(hint, MIN_POLL_SECONDS), policy.maximum)
    base = policy.initial * policy.multiplier**quiet_polls
    return min(base * (0.8 + 0.4 * rng.random()), policy.maximum)
