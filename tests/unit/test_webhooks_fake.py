"""The SDK's webhook methods (sync and async) against the FakeServer: the secret, a batch's deliveries, redelivery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import batchscore
from batchscore.testing import FakeService
from tests.unit.test_testing_kit import App, make_app, mode, scored_with_plot  # noqa: F401  (mode: a fixture)

RECORDS = [{"hp": 110.0, "wt": 2.62}, {"hp": 93.0, "wt": 2.32}]


@pytest.fixture
def app(mode: str) -> Iterator[App]:  # noqa: F811
    made = make_app(mode, services={("scorer", "v1"): FakeService(scored_with_plot)}, steps_per_poll=100)
    yield made
    made.close()


def test_the_secret_is_kept_until_rotated(app: App) -> None:
    client = app.client(username="admin", password="pw")
    secret = app.run(client.webhook_secret())
    assert secret.startswith("whsec_")
    assert app.run(client.webhook_secret()) == secret
    rotated = app.run(client.rotate_webhook_secret())
    assert rotated != secret
    assert app.run(client.webhook_secret()) == rotated


def test_a_batch_with_a_callback_shows_its_delivery_and_redelivers_it(app: App) -> None:
    client = app.client(username="admin", password="pw")
    service = app.run(client.get_service("scorer", "v1"))
    batch = app.run(service.batch(RECORDS, callback_url="https://hooks.example.com/x").start())
    app.run(batch.wait())
    (delivery,) = app.run(batch.webhook_deliveries())
    assert (delivery.event, delivery.state, delivery.url) == (
        "batch.completed",
        "delivered",
        "https://hooks.example.com/x",
    )
    assert delivery.id.startswith("msg_")
    again = app.run(batch.redeliver_webhook(delivery.id))
    assert again.id == delivery.id
    with pytest.raises(batchscore.NotFoundError):
        app.run(batch.redeliver_webhook("msg_unknown"))
    plain = app.run(service.batch(RECORDS).start())  # no callback: no deliveries
    app.run(plain.wait())
    assert app.run(plain.webhook_deliveries()) == []
