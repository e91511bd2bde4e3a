"""The flows of webhooks (see :mod:`batchscore._flows`): the caller's signing secret, a batch's deliveries."""

from __future__ import annotations

from functools import partial

from batchscore._flows import Flow
from batchscore._wire import Call
from batchscore.webhooks import WebhookDelivery
from batchscore_client.api.webhooks import (
    get_webhook_secret,
    list_batch_webhook_deliveries,
    redeliver_batch_webhook,
    rotate_webhook_secret,
)


def webhook_secret(rotate: bool = False) -> Flow[str]:
    """The caller's signing secret (created on first use); with ``rotate`` a new one."""
    operation = rotate_webhook_secret if rotate else get_webhook_secret
    answer = yield Call.of(partial(operation.sync_detailed))
    return str(answer.secret)


def webhook_deliveries(name: str, version: str, execution_id: str) -> Flow[list[WebhookDelivery]]:
    """A batch's deliveries, oldest first."""
    models = yield Call.of(partial(list_batch_webhook_deliveries.sync_detailed, name, version, execution_id))
    return [WebhookDelivery.from_model(model) for model in models or []]


def redeliver_webhook(name: str, version: str, execution_id: str, delivery_id: str) -> Flow[WebhookDelivery]:
    """Queue one of a batch's deliveries again."""
    model = yield Call.of(partial(redeliver_batch_webhook.sync_detailed, name, version, execution_id, delivery_id))
    return WebhookDelivery.from_model(model)
