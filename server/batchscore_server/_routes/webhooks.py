"""Webhooks: the caller's signing secret, a batch's deliveries and their redelivery; the check of ``callbackUrl``.

The deliveries themselves are sent by ``_webhooks.Dispatcher``; events are written by the store when a batch ends.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from batchscore_server._errors import ApiError, not_found
from batchscore_server._routes.deps import CurrentUser, ServerState, json_response
from batchscore_server._routes.views import batch_of, iso, summary
from batchscore_server._state import Server
from batchscore_server._store import Record

router = APIRouter(tags=["Webhooks"])

PROGRESS_EVENT = "batch.progress"
DELIVERY_ID = re.compile(r"^msg_[A-Za-z0-9]{1,64}$")


def event_payload(server: Server) -> Callable[[Record, str], str]:
    """What the store writes as the body of a batch's event: a ``WebhookEvent``'s JSON text.

    Its ``data`` is the batch's summary as its status answers it, without results; a progress event counts the
    rows running now (an end event has none running).
    """

    def payload(batch: Record, event: str) -> str:
        running = server.batches.running_count(batch["id"]) if event == PROGRESS_EVENT else 0
        return json.dumps({"type": event, "timestamp": iso(time.time()), "data": summary(batch, running)})

    return payload


def delivery_view(row: Record) -> dict[str, Any]:
    """The contract's ``WebhookDelivery`` of a ``webhook_deliveries`` row."""
    return {
        "id": row["id"],
        "event": row["event"],
        "url": row["url"],
        "state": row["state"],
        "attempts": row["attempts"],
        "lastStatusCode": row["last_status"],
        "lastError": row["last_error"] or "",
        "createdTime": iso(row["created"]),
        "deliveredTime": iso(row["delivered"]),
        "nextAttemptTime": iso(row["next_attempt"]) if row["state"] == "pending" else None,
    }


async def _allowed_callback(
    server: ServerState, callback_url: Annotated[str | None, Query(alias="callbackUrl")] = None
) -> str | None:
    if callback_url is not None:
        server.webhook_allow.check(callback_url)
    return callback_url


AllowedCallback = Annotated[str | None, Depends(_allowed_callback)]
"""A start's ``callbackUrl``, refused (400 naming it) unless the server's ``--webhook-allow`` allows its host."""


@router.get("/webhooks/secret")
async def get_webhook_secret(user: CurrentUser, server: ServerState) -> Response:
    """The caller's signing secret, created on first use."""
    secret = await asyncio.to_thread(server.store.webhook_secret, user.name)
    return await json_response({"secret": secret})


@router.post("/webhooks/secret")
async def rotate_webhook_secret(user: CurrentUser, server: ServerState) -> Response:
    """A new signing secret for the caller; the old one signs too for 24 hours."""
    secret = await asyncio.to_thread(server.store.webhook_secret, user.name, True)
    return await json_response({"secret": secret})


@router.get("/api/{name}/{version}/batch/{executionId}/webhooks")
async def list_batch_webhook_deliveries(
    name: str,
    version: str,
    executionId: str,
    user: CurrentUser,
    server: ServerState,
) -> Response:
    """A batch's deliveries, oldest first (visible as the batch is)."""

    def read() -> list[dict[str, Any]]:
        batch = batch_of(server.store, name, version, executionId, user)
        return [delivery_view(row) for row in server.store.webhook_deliveries(batch["id"])]

    return await json_response(await asyncio.to_thread(read))


@router.post("/api/{name}/{version}/batch/{executionId}/webhooks/{deliveryId}/redeliver")
async def redeliver_batch_webhook(
    name: str,
    version: str,
    executionId: str,
    deliveryId: str,
    user: CurrentUser,
    server: ServerState,
) -> Response:
    """Queue a delivery again: the same webhook-id, attempts from 0, due now."""
    if not DELIVERY_ID.match(deliveryId):
        raise ApiError(400, "deliveryId must be msg_ and 1 to 64 letters or digits", "deliveryId")

    def redeliver() -> dict[str, Any]:
        batch = batch_of(server.store, name, version, executionId, user)
        row = server.store.redeliver_webhook(batch["id"], deliveryId)
        if row is None:
            raise not_found(f"webhook delivery {deliveryId}", "deliveryId")
        return delivery_view(row)

    return await json_response(await asyncio.to_thread(redeliver), status_code=202)
