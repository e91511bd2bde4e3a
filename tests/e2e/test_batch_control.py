"""Cancel keeps finished rows, retry re-runs only failures, DELETE removes everything, row errors are results."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from tests.e2e.conftest import publish, wait_until_finished

SLOW = "import time\ntime.sleep(0.25)\nanswer = hp + wt\n"
FLAKY = "if hp < 0:\n    raise ValueError(f'negative horsepower {hp}')\nanswer = hp * 2\n"


def test_user_errors_are_results_and_retry_reruns_only_them(api: httpx.Client) -> None:
    publish(api, "flaky", FLAKY)
    records = [{"hp": float(h), "wt": 1.0} for h in (1, -1, 2, -2, 3)]
    started = api.post("/api/flaky/v1/batch", json=records).json()
    final = wait_until_finished(api, "flaky", started["batchExecutionId"])
    assert final["state"] == "complete"
    assert final["failedItemCount"] == 2
    results = api.get(f"/api/flaky/v1/batch/{started['batchExecutionId']}").json()["batchExecutionResults"]
    failed = [r for r in results if not r["success"]]
    assert [r["index"] for r in failed] == [1, 3]
    assert "ValueError: negative horsepower -1.0" in failed[0]["errorMessage"]
    assert [r["itemState"] for r in results] == ["complete", "failed", "complete", "failed", "complete"]

    cursor = api.get(f"/api/flaky/v1/batch/{started['batchExecutionId']}").json()["cursor"]
    retried = api.post(f"/api/flaky/v1/batch/{started['batchExecutionId']}/retry")
    assert retried.status_code == 202
    wait_until_finished(api, "flaky", started["batchExecutionId"])
    newer = api.get(f"/api/flaky/v1/batch/{started['batchExecutionId']}", params={"since": cursor}).json()
    assert sorted(r["index"] for r in newer["batchExecutionResults"]) == [1, 3]  # only the failures ran again


def test_cancel_keeps_finished_rows_then_delete_removes_the_batch(api: httpx.Client) -> None:
    publish(api, "slow", SLOW)
    records = [{"hp": float(i), "wt": 0.5} for i in range(40)]
    execution_id = api.post("/api/slow/v1/batch", params={"parallelCount": 2}, json=records).json()["batchExecutionId"]
    deadline = time.monotonic() + 120
    most_running = 0
    while (status := api.get(f"/api/slow/v1/batch/{execution_id}").json())["completedItemCount"] < 3:
        most_running = max(most_running, status["runningItemCount"])
        assert status["runningItemCount"] <= 2, "parallelCount=2 caps the rows running at once"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert most_running >= 1
    canceled = api.post(f"/api/slow/v1/batch/{execution_id}/cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert body["state"] == "canceled"
    assert body["completedItemCount"] >= 3
    assert body["completedItemCount"] + body["canceledItemCount"] == 40
    assert body["canceledItemCount"] > 0
    after = api.get(f"/api/slow/v1/batch/{execution_id}").json()
    done = [r for r in after["batchExecutionResults"] if r["itemState"] == "complete"]
    assert all(r["outputParameters"]["answer"] == r["index"] + 0.5 for r in done)
    # Nothing starts after cancel returned: the counts stay where they were.
    time.sleep(0.6)
    assert api.get(f"/api/slow/v1/batch/{execution_id}").json()["completedItemCount"] == body["completedItemCount"]
    assert api.post(f"/api/slow/v1/batch/{execution_id}/cancel").status_code == 200  # idempotent

    assert api.delete(f"/api/slow/v1/batch/{execution_id}").json() == [execution_id]
    assert api.get(f"/api/slow/v1/batch/{execution_id}").status_code == 404
    assert execution_id not in api.get("/api/slow/v1/batch").json()


def test_a_large_streamed_body_with_a_bad_record_gets_a_clean_400_and_stores_nothing(api: httpx.Client) -> None:
    publish(api, "streamed", "answer = hp + wt\n")
    before = api.get("/api/streamed/v1/batch").json()

    def body() -> Iterator[bytes]:  # ~6 MB in 64 KiB pieces; the bad record is near the start
        lines = [b'{"hp": 1.0, "wt": 2.0}\n'] * 250_000
        lines[3] = b'{"hp": "fast", "wt": 2.0}\n'
        text = b"".join(lines)
        for start in range(0, len(text), 65536):
            yield text[start : start + 65536]

    answer = api.post(
        "/api/streamed/v1/batch", content=body(), headers={"Content-Type": "application/x-ndjson"}, timeout=120
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "body[3].hp"
    assert api.get("/api/streamed/v1/batch").json() == before
    good = api.post(
        "/api/streamed/v1/batch",
        content=b"".join([b'{"hp": 1.0, "wt": 2.0}\n'] * 3000),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert good.status_code == 202
    final = wait_until_finished(api, "streamed", good.json()["batchExecutionId"])
    assert (final["completedItemCount"], final["failedItemCount"]) == (3000, 0)
