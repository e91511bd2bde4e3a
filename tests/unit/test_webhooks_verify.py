"""``batchscore.webhooks.verify`` against the reference Standard Webhooks library, both ways, and what it refuses."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

import batchscore
from batchscore import webhooks

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
EVENT = {
    "type": "batch.completed",
    "timestamp": "2026-11-25T20:16:02Z",
    "data": {
        "batchExecutionId": "b-1",
        "name": "svc",
        "version": "v1",
        "state": "complete",
        "completedItemCount": 3,
        "totalItemCount": 3,
        "failedItemCount": 0,
        "runningItemCount": 0,
        "canceledItemCount": 0,
        "parallelCount": 2,
        "createdBy": "alice",
        "creationTime": "2026-11-25T20:16:00Z",
    },
}
BODY = json.dumps(EVENT).encode()


def signed_by_reference(secret: str, body: bytes, stamp: int | None = None, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers as the standardwebhooks package signs them."""
    stamp = int(time.time()) if stamp is None else stamp
    signature = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_verify_accepts_what_the_reference_library_signs() -> None:
    event = webhooks.verify(BODY, signed_by_reference(SECRET, BODY), SECRET)
    assert (event.id, event.type) == ("msg_1", "batch.completed")
    assert event.batch.state is batchscore.BatchState.COMPLETE
    assert event.batch.execution_id == "b-1"
    assert event.batch.completed_item_count == 3
    # Header names in any casing, the body as text.
    headers = {k.upper(): v for k, v in signed_by_reference(SECRET, BODY).items()}
    assert webhooks.verify(BODY.decode(), headers, SECRET).raw == EVENT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: (h, b.replace(b"complete", b"failed!!")), "no signature matches"),
        (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "no signature matches"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "Unix seconds"),
    ],
)
def test_verify_refuses_a_changed_event(change: Any, message: str) -> None:
    headers, body = change(signed_by_reference(SECRET, BODY), BODY)
    with pytest.raises(batchscore.WebhookVerificationError, match=message):
        webhooks.verify(body, headers, SECRET)


def test_verify_refuses_another_secret_and_a_stale_or_future_timestamp() -> None:
    with pytest.raises(batchscore.WebhookVerificationError, match="no signature matches"):
        webhooks.verify(BODY, signed_by_reference(OTHER, BODY), SECRET)
    old = signed_by_reference(SECRET, BODY, stamp=int(time.time()) - 3600)
    with pytest.raises(batchscore.WebhookVerificationError, match="from now"):
        webhooks.verify(BODY, old, SECRET)
    assert webhooks.verify(BODY, old, SECRET, tolerance=7200).type == "batch.completed"
    future = signed_by_reference(SECRET, BODY, stamp=int(time.time()) + 3600)
    with pytest.raises(batchscore.WebhookVerificationError, match="from now"):
        webhooks.verify(BODY, future, SECRET)
    assert issubclass(batchscore.WebhookVerificationError, batchscore.BatchscoreError)


def test_verify_accepts_any_of_several_signatures() -> None:
    # After a rotation the server sends one signature per secret: a receiver with either verifies.
    first = signed_by_reference(SECRET, BODY)
    second = signed_by_reference(OTHER, BODY, stamp=int(first["webhook-timestamp"]))
    both = {**first, "webhook-signature": f"{first['webhook-signature']} {second['webhook-signature']}"}
    assert webhooks.verify(BODY, both, SECRET).id == "msg_1"
    assert webhooks.verify(BODY, both, OTHER).id == "msg_1"
    standardwebhooks.Webhook(OTHER).verify(BODY, both)  # and the reference library agrees


def test_a_signed_body_that_is_not_an_event_is_refused() -> None:
    body = b'{"hello": 1}'
    with pytest.raises(batchscore.WebhookVerificationError, match="not a batchscore event"):
        webhooks.verify(body, signed_by_reference(SECRET, body), SECRET)
