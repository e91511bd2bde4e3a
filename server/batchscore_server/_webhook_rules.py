"""The rules of webhooks that the store and the dispatcher share: Standard Webhooks signing, ids, and the retries.

No imports from the server: the store (which writes the outbox) and ``_webhooks`` (which sends it) both use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP_SECONDS = 24 * 3600.0  # a rotated-out secret keeps signing this long
PROGRESS_SECONDS = 10.0  # at most one batch.progress event per batch this often
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0
GIVE_UP_SECONDS = 3 * 24 * 3600.0


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """A delivery's ``webhook-id``: ``msg_`` and 32 hex digits (the contract's ``^msg_[A-Za-z0-9]{1,64}$``)."""
    return "msg_" + uuid.uuid4().hex


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature (``v1,<base64 HMAC-SHA256>``) of a body by one ``whsec_`` secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(signing_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, with one signature per secret (two after a rotation)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, message_id, timestamp, body) for secret in signing_secrets),
    }


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 5 s, doubling, at most an hour."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS))


def gives_up(attempts: int) -> bool:
    """Whether ``attempts`` failed attempts span three days (their delays add up to it).

    Counted from the attempts, not from a time, so a redelivery (attempts back to 0) gets three days again.
    """
    return sum(retry_delay(n) for n in range(1, attempts + 1)) >= GIVE_UP_SECONDS
