"""Signed webhooks: verify an event a batchscore server sent to a batch's ``callbackUrl``.

The server signs as Standard Webhooks (https://www.standardwebhooks.com) do: headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
``<id>.<timestamp>.<body>``, one per secret, space-separated: two for 24 h after a rotation), keyed by the batch
owner's secret (``client.webhook_secret()``). Any Standard Webhooks library verifies them too.

Example:
    >>> from batchscore import webhooks
    >>> event = webhooks.verify(request.body, request.headers, secret)
    >>> event.type, event.batch.state

"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchscore._exceptions import WebhookVerificationError
from batchscore._models import BatchStatus

__all__ = ["WebhookDelivery", "WebhookEvent", "WebhookVerificationError", "verify"]

DEFAULT_TOLERANCE_SECONDS = 300
_SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class WebhookEvent:
    """A verified event.

    Attributes:
        id: Its ``webhook-id``: the same on every retry and redelivery (deduplicate by it).
        type: ``batch.completed``, ``batch.failed``, ``batch.canceled`` or ``batch.progress``.
        timestamp: When it happened (the contract's ``date-time``).
        batch: The batch's summary (without results) at that moment.
        raw: The body as parsed JSON.

    """

    id: str
    type: str
    timestamp: str
    batch: BatchStatus
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class WebhookDelivery:
    """One event for a batch's ``callbackUrl`` and how its delivery went (``batch.webhook_deliveries()``).

    Attributes:
        id: The event's ``webhook-id``; pass it to ``batch.redeliver_webhook``.
        event: The event type.
        url: Where it goes.
        state: ``pending``, ``delivered`` or ``failed`` (every attempt failed for three days).
        attempts: Attempts made so far.
        last_status_code: The receiver's status at the last attempt (None: no answer).
        last_error: Why the last attempt failed ("" when it did not).
        created_time: When the event happened.
        delivered_time: When the receiver accepted it.
        next_attempt_time: When the next attempt is due (while pending).

    """

    id: str
    event: str
    url: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_time: str
    delivered_time: str | None
    next_attempt_time: str | None

    @classmethod
    def from_model(cls, model: Any) -> WebhookDelivery:
        """Build from the generated ``WebhookDelivery``."""
        return cls(
            id=str(model.id),
            event=str(getattr(model.event, "value", model.event)),
            url=str(model.url),
            state=str(getattr(model.state, "value", model.state)),
            attempts=int(model.attempts),
            last_status_code=model.last_status_code,
            last_error=str(model.last_error or ""),
            created_time=_iso(model.created_time),
            delivered_time=None if model.delivered_time is None else _iso(model.delivered_time),
            next_attempt_time=None if model.next_attempt_time is None else _iso(model.next_attempt_time),
        )


def _iso(moment: Any) -> str:
    return moment if isinstance(moment, str) else str(moment.isoformat()).replace("+00:00", "Z")


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> WebhookEvent:
    """Check an event's signature and age; return the event.

    Args:
        body: The request body exactly as received (bytes; a str is taken as its UTF-8).
        headers: The request headers (any casing).
        secret: The signing secret (``whsec_...``, from ``client.webhook_secret()``).
        tolerance: Seconds the ``webhook-timestamp`` may be from now, either way (a replayed old event fails).

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is too old or too new, no signature matches
            (the body was changed, or another secret signed it), or the body is not an event.

    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    message_id, stamp, signatures = (lower.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (message_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds")
    if abs(time.time() - int(stamp)) > tolerance:
        raise WebhookVerificationError(f"webhook-timestamp is more than {tolerance:g} s from now (a replay?)")
    try:
        key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    # Every signature is compared (constant time each): after a rotation the header carries two.
    if not any(hmac.compare_digest(expected.encode(), sent.encode()) for sent in signatures.split(" ")):
        raise WebhookVerificationError("no signature matches: the body was changed, or another secret signed it")
    try:
        event = json.loads(raw)
        return WebhookEvent(
            id=message_id,
            type=str(event["type"]),
            timestamp=str(event["timestamp"]),
            batch=BatchStatus.from_json(event["data"]),
            raw=event,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise WebhookVerificationError(f"the signed body is not a batchscore event: {error}") from None
