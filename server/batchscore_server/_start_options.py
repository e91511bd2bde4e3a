"""The batch start's extension options (issue 15): parsed, bounded and turned into ``batches`` columns.

Each option is a query parameter of ``POST /api/{name}/{version}/batch`` (the body stays ML Server's array of
records): the failure policy, retries, labels, retention and the webhook. A bad value is a 400 naming the parameter,
before anything is stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from batchscore_server._errors import ApiError

__all__ = ["MAX_LABELS", "StartOptions", "parse_start_options"]

MAX_LABELS = 16
_LABEL_KEY = re.compile(r"[A-Za-z0-9_.-]{1,63}")
_MAX_LABEL_VALUE = 255
_MAX_ITEM_RETRIES = 10
MIN_EXPIRES_AFTER_SECONDS = 60
MAX_EXPIRES_AFTER_SECONDS = 31_622_400  # 366 days
DEFAULT_MIN_FAILURE_SAMPLE = 20
_MAX_URL_LENGTH = 2048
_INT32 = 2**31 - 1


@dataclass(frozen=True)
class StartOptions:
    """The extension options of one start, as the ``batches`` columns hold them."""

    max_failed_items: int | None = None
    max_failure_ratio: float | None = None
    min_failure_sample: int | None = None
    item_retries: int = 0
    retry_timeouts: bool = False
    labels: dict[str, str] | None = None
    expires_after: float | None = None
    callback_url: str | None = None
    callback_progress: bool = False

    def columns(self) -> dict[str, Any]:
        """The ``batches`` columns (``labels`` included: the store writes ``batch_labels`` from it)."""
        return {
            "max_failed_items": self.max_failed_items,
            "max_failure_ratio": self.max_failure_ratio,
            "min_failure_sample": self.min_failure_sample,
            "item_retries": self.item_retries,
            "retry_timeouts": self.retry_timeouts,
            "labels": self.labels,
            "expires_after": self.expires_after,
            "callback_url": self.callback_url,
            "callback_progress": self.callback_progress,
        }

    def request_parts(self) -> list[Any]:
        """What an idempotent repeat must repeat: the same options (labels in a fixed order)."""
        labels = sorted((self.labels or {}).items())
        return [*(value for key, value in self.columns().items() if key != "labels"), labels]


def _whole(value: str | None, field: str, minimum: int, maximum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{field} must be a whole number, got {value[:40]!r}", field) from None
    if not minimum <= number <= maximum:
        raise ApiError(400, f"{field} must be at least {minimum} and at most {maximum}", field)
    return number


def _ratio(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"maxFailureRatio must be a number, got {value[:40]!r}", "maxFailureRatio") from None
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise ApiError(400, "maxFailureRatio must be between 0 and 1", "maxFailureRatio")
    return number


def _labels(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    if len(values) > MAX_LABELS:
        raise ApiError(400, f"label: at most {MAX_LABELS} labels, got {len(values)}", "label")
    labels: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not _LABEL_KEY.fullmatch(key):
            raise ApiError(
                400, f"label must be key=value, the key 1 to 63 letters, digits, _ . or -; got {value[:80]!r}", "label"
            )
        if len(text) > _MAX_LABEL_VALUE or any(ord(character) < 0x20 for character in text):
            raise ApiError(400, f"label {key}: the value must be at most 255 characters, no control ones", "label")
        if key in labels and labels[key] != text:
            # The same label twice is one label (liberal in what we accept); two values for one key are a mistake.
            raise ApiError(400, f"label {key} is given twice, with two values", "label")
        labels[key] = text
    return labels


def _callback_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not 8 <= len(value) <= _MAX_URL_LENGTH or any(ord(character) <= 0x20 for character in value):
        raise ApiError(400, f"callbackUrl must be an http(s) URL of 8 to {_MAX_URL_LENGTH} characters", "callbackUrl")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises for a port that is not a number or out of range
    except ValueError:
        raise ApiError(400, "callbackUrl is not a valid URL", "callbackUrl") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "callbackUrl must be an http or https URL with a host", "callbackUrl")
    if parts.username is not None or parts.password is not None:
        raise ApiError(400, "callbackUrl must not carry a user name or password", "callbackUrl")
    return value


def parse_start_options(
    *,
    max_failed_items: str | None = None,
    max_failure_ratio: str | None = None,
    min_failure_sample: str | None = None,
    item_retries: str | None = None,
    retry_timeouts: bool | None = None,
    labels: list[str] | None = None,
    expires_after: str | None = None,
    callback_url: str | None = None,
    callback_progress: bool | None = None,
) -> StartOptions:
    """Parse the start's extension query parameters (their raw text).

    Raises:
        ApiError: 400 naming the first bad parameter.

    """
    ratio = _ratio(max_failure_ratio)
    sample = _whole(min_failure_sample, "minFailureSample", 1, _INT32)
    expires = _whole(expires_after, "expiresAfter", MIN_EXPIRES_AFTER_SECONDS, MAX_EXPIRES_AFTER_SECONDS)
    if sample is None and ratio is not None:
        sample = DEFAULT_MIN_FAILURE_SAMPLE
    return StartOptions(
        max_failed_items=_whole(max_failed_items, "maxFailedItems", 0, _INT32),
        max_failure_ratio=ratio,
        # The sample only matters with a ratio; kept as given (NULL: the default) so the status echoes it.
        min_failure_sample=sample
        if sample is not None
        else (DEFAULT_MIN_FAILURE_SAMPLE if ratio is not None else None),
        item_retries=_whole(item_retries, "itemRetries", 0, _MAX_ITEM_RETRIES) or 0,
        retry_timeouts=bool(retry_timeouts),
        labels=_labels(labels),
        expires_after=float(expires) if expires is not None else None,
        callback_url=_callback_url(callback_url),
        callback_progress=bool(callback_progress),
    )
