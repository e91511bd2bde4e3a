"""Pure retry and polling decisions, shared by the sync and async clients (only their I/O differs)."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
MIN_POLL_SECONDS = 0.1


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
    """Whether the request's body can be sent again (a streamed upload cannot)."""
    return isinstance(request.stream, httpx.ByteStream) or getattr(request.stream, "replayable", False) is True


def may_retry(request: httpx.Request) -> bool:
    """Whether sending the request twice is safe: an idempotent method, or a POST with an Idempotency-Key."""
    safe = request.method in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in request.headers
    return safe and is_replayable(request)


def retry_after_seconds(response: httpx.Response | None, now: float | None = None) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date) in seconds, when it sent a usable one."""
    if response is None:
        return None
    value = response.headers.get("retry-after")
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
    hinted = retry_after_seconds(response)
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
