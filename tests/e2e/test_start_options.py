"""The batch start's extension options of issue 15 reach the database and come back in the status.

What each option does is tested with its feature (failure policy, retention, webhooks, the batch list); here: that
the SDK (sync and async) and the raw API store them, the status echoes them, an idempotent repeat must repeat them,
and the rate and ETA fields appear while a batch runs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx

import batchscore
from batchscore_server import RunningServer
from tests.e2e.conftest import publish, wait_until_finished

SLOW = "import time\ntime.sleep(0.05)\nanswer = hp + wt\n"


def test_the_status_echoes_the_options_and_reports_a_rate(api: httpx.Client) -> None:
    publish(api, "options", SLOW)
    records = [{"hp": float(i), "wt": 1.0} for i in range(60)]
    started = api.post(
        "/api/options/v1/batch",
        params=[
            ("parallelCount", "2"),
            ("maxFailedItems", "5"),
            ("maxFailureRatio", "0.5"),
            ("itemRetries", "2"),
            ("label", "team=risk"),
            ("label", "note=a=b c"),
            ("label", "team=risk"),  # the same label again is the same label
            ("expiresAfter", "3600"),
        ],
        json=records,
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["batchExecutionId"]
    deadline = time.monotonic() + 240
    while (status := api.get(f"/api/options/v1/batch/{execution_id}", params={"limit": 1}).json())[
        "rowsPerSecond"
    ] is None:
        assert status["state"] not in ("complete", "failed", "canceled"), "a rate shows while the batch runs"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["rowsPerSecond"] > 0
    if status["state"] == "inProgress":
        assert status["estimatedSecondsLeft"] is not None
    assert status["labels"] == {"team": "risk", "note": "a=b c"}
    assert (status["maxFailedItems"], status["maxFailureRatio"], status["minFailureSample"]) == (5, 0.5, 20)
    assert (status["itemRetries"], status["retryTimeouts"]) == (2, False)
    assert status["startTime"] is not None
    assert status["expired"] is False
    final = wait_until_finished(api, "options", execution_id)
    assert final["estimatedSecondsLeft"] is None
    assert final["rowsPerSecond"] > 0
    assert final["labels"] == {"team": "risk", "note": "a=b c"}


def test_an_idempotent_repeat_must_repeat_the_options(api: httpx.Client) -> None:
    publish(api, "options-idem", "answer = hp\n")
    records = [{"hp": 1.0, "wt": 1.0}]
    headers = {"Idempotency-Key": "options-idem-1"}
    first = api.post("/api/options-idem/v1/batch", params={"label": "a=1"}, json=records, headers=headers)
    again = api.post("/api/options-idem/v1/batch", params={"label": "a=1"}, json=records, headers=headers)
    other = api.post("/api/options-idem/v1/batch", params={"label": "a=2"}, json=records, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["batchExecutionId"] == first.json()["batchExecutionId"]
    assert other.status_code == 409


def test_the_sdk_sends_the_options_sync_and_async(server: RunningServer, api: httpx.Client) -> None:
    publish(api, "options-sdk", "answer = hp\n")
    records = [{"hp": 1.0, "wt": 2.0}, {"hp": 3.0, "wt": 4.0}]
    options = batchscore.BatchOptions(
        max_failed_items=0, item_retries=1, retry_timeouts=True, labels={"team": "sdk"}, expires_after=timedelta(days=2)
    )
    with batchscore.Client(server.url, username="admin", password=server.admin_password) as client:
        status = client.get_service("options-sdk", "v1").batch(records, **vars(options)).start().wait()
    assert status.labels == {"team": "sdk"}
    assert status.start_time
    assert status.raw is not None

    async def run() -> batchscore.BatchStatus:
        async with batchscore.AsyncClient(server.url, username="admin", password=server.admin_password) as client:
            service = await client.get_service("options-sdk", "v1")
            batch = await service.batch(records, **vars(options)).start()
            return await batch.wait()

    status = asyncio.run(run())
    assert status.labels == {"team": "sdk"}
    assert status.rows_per_second is not None
