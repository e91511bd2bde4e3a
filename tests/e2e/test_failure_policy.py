"""Issue 15, item 2: the failure policy (maxFailedItems, maxFailureRatio) and retries (itemRetries, retryTimeouts)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import batchscore
from batchscore_server import _db, running_server
from batchscore_server._embedded import RunningServer
from batchscore_server._settings import Settings
from tests.e2e.conftest import login, publish, wait_until_finished
from tests.e2e.test_cli import clean_env, run, run_json

# Fails the rows whose hp is negative; the others sleep a little, so a policy stop finds rows still pending.
FAILS_NEGATIVE = (
    "import time\nif hp < 0:\n    raise ValueError(f'negative hp {hp}')\ntime.sleep(0.05)\nanswer = hp + wt\n"
)


def flaky(marker_dir: Path, error: str) -> str:
    """Code that raises ``error`` on a row's first run (it leaves a marker file), and succeeds on the next."""
    return (
        "import os\nimport time\nimport batchscore\n"
        f"marker = os.path.join({str(marker_dir)!r}, 'row-%d' % int(hp))\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        f"    {error}\n"
        "answer = hp + wt\n"
    )


def start(api: httpx.Client, service: str, records: list[dict[str, float]], **params: Any) -> str:
    started = api.post(f"/api/{service}/v1/batch", params={"parallelCount": 1, **params}, json=records)
    assert started.status_code == 202, started.text
    return str(started.json()["batchExecutionId"])


def results(api: httpx.Client, service: str, execution_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(f"/api/{service}/v1/batch/{execution_id}").json()["batchExecutionResults"]
    return rows


def test_max_failed_items_stops_the_batch_cancels_pending_rows_and_keeps_finished_ones(own_api: httpx.Client) -> None:
    publish(own_api, "policycount", FAILS_NEGATIVE)
    # Rows 0-2 fail, 3-4 succeed, then 60 more: with maxFailedItems=2 the third failure stops the batch.
    records = [{"hp": -1.0, "wt": 0.0}] * 3 + [{"hp": float(i), "wt": 1.0} for i in range(62)]
    execution_id = start(own_api, "policycount", records, maxFailedItems=2)
    final = wait_until_finished(own_api, "policycount", execution_id)
    assert final["state"] == "failed", final
    assert "failure policy" in final["errorMessage"], final
    assert "maxFailedItems=2" in final["errorMessage"], final
    assert "3 of " in final["errorMessage"], final
    rows = results(own_api, "policycount", execution_id)
    assert [r["index"] for r in rows] == list(range(len(records)))  # every row has exactly one result
    assert [r["itemState"] for r in rows[:3]] == ["failed"] * 3
    assert final["failedItemCount"] == 3
    canceled = [r for r in rows if r["itemState"] == "canceled"]
    assert canceled, "no pending row was canceled"
    assert all("failure policy" in r["errorMessage"] and r["attempt"] == 0 for r in canceled)
    # Rows that ran before the stop keep their results.
    assert all(r["success"] for r in rows if r["itemState"] == "complete")
    assert final["canceledItemCount"] == len(canceled)


def test_max_failure_ratio_waits_for_its_sample(own_api: httpx.Client) -> None:
    publish(own_api, "policyratio", FAILS_NEGATIVE)
    # Every other row fails (50 %): over 0.4 from the first failure, but judged only once 10 rows finished.
    records = [{"hp": -1.0 if i % 2 else float(i), "wt": 0.0} for i in range(60)]
    execution_id = start(own_api, "policyratio", records, maxFailureRatio=0.4, minFailureSample=10)
    final = wait_until_finished(own_api, "policyratio", execution_id)
    assert final["state"] == "failed", final
    assert "maxFailureRatio=0.4" in final["errorMessage"], final
    finished = final["completedItemCount"] + final["failedItemCount"]
    assert finished >= 10, final  # not before the sample
    assert final["canceledItemCount"] > 0, final
    # Under the ratio: the same rows with a laxer policy run to the end.
    relaxed = start(own_api, "policyratio", records, maxFailureRatio=0.6, minFailureSample=10)
    assert wait_until_finished(own_api, "policyratio", relaxed)["state"] == "complete"


def test_a_retryable_exception_is_retried_and_succeeds_on_attempt_two(own_api: httpx.Client, tmp_path: Path) -> None:
    publish(own_api, "flakyretry", flaky(tmp_path, "raise batchscore.Retryable('flaky: try again')"))
    records = [{"hp": float(i), "wt": 1.0} for i in range(3)]
    execution_id = start(own_api, "flakyretry", records, itemRetries=2)
    final = wait_until_finished(own_api, "flakyretry", execution_id)
    assert final["state"] == "complete", final
    assert final["failedItemCount"] == 0
    assert final["retriedItemCount"] == 3
    rows = results(own_api, "flakyretry", execution_id)
    assert [r["success"] for r in rows] == [True] * 3, rows
    for row in rows:
        assert row["attempt"] == 2, row
        assert [a["attempt"] for a in row["attempts"]] == [1], row
        assert "flaky: try again" in row["attempts"][0]["errorMessage"]


def test_a_retryable_exception_without_item_retries_fails(own_api: httpx.Client, tmp_path: Path) -> None:
    publish(own_api, "flakyonce", flaky(tmp_path, "raise batchscore.Retryable('flaky')"))
    execution_id = start(own_api, "flakyonce", [{"hp": 1.0, "wt": 1.0}])
    assert wait_until_finished(own_api, "flakyonce", execution_id)["state"] == "complete"
    (row,) = results(own_api, "flakyonce", execution_id)
    assert (row["success"], row["attempt"], "attempts" in row) == (False, 1, False), row


def test_a_plain_exception_is_not_retried(own_api: httpx.Client, tmp_path: Path) -> None:
    publish(own_api, "flakyplain", flaky(tmp_path, "raise RuntimeError('plain')"))
    execution_id = start(own_api, "flakyplain", [{"hp": 1.0, "wt": 1.0}], itemRetries=3)
    assert wait_until_finished(own_api, "flakyplain", execution_id)["state"] == "complete"
    (row,) = results(own_api, "flakyplain", execution_id)
    assert (row["success"], row["attempt"], "attempts" in row) == (False, 1, False), row
    assert "RuntimeError: plain" in row["errorMessage"]


def test_retries_run_out_and_keep_every_attempt(own_api: httpx.Client) -> None:
    publish(own_api, "alwaysflaky", "import batchscore\nraise batchscore.Retryable(f'no luck {hp}')\n")
    execution_id = start(own_api, "alwaysflaky", [{"hp": 7.0, "wt": 1.0}], itemRetries=2, maxFailedItems=0)
    final = wait_until_finished(own_api, "alwaysflaky", execution_id)
    # The policy counts the row once its retries are spent: then it stops the batch (nothing else to cancel).
    assert final["state"] == "failed", final
    (row,) = results(own_api, "alwaysflaky", execution_id)
    assert (row["itemState"], row["attempt"]) == ("failed", 3), row
    assert [a["attempt"] for a in row["attempts"]] == [1, 2], row
    assert all("no luck 7" in a["errorMessage"] for a in row["attempts"])


@pytest.mark.parametrize("retry_timeouts", [True, False])
def test_a_timeout_is_retried_only_with_retry_timeouts(
    own_api: httpx.Client, tmp_path: Path, retry_timeouts: bool
) -> None:
    service = f"slowonce{int(retry_timeouts)}"
    publish(own_api, service, flaky(tmp_path, "time.sleep(600)"))
    params = {"itemTimeout": 2, "itemRetries": 1, "retryTimeouts": retry_timeouts}
    execution_id = start(own_api, service, [{"hp": 1.0, "wt": 1.0}], **params)
    assert wait_until_finished(own_api, service, execution_id)["state"] == "complete"
    (row,) = results(own_api, service, execution_id)
    if retry_timeouts:
        assert (row["success"], row["attempt"]) == (True, 2), row
        assert "timed out" in row["attempts"][0]["errorMessage"]
    else:
        assert (row["success"], "attempts" in row) == (False, False), row
        assert "timed out" in row["errorMessage"]


def test_a_worker_death_is_retried_with_item_retries(own_api: httpx.Client, tmp_path: Path) -> None:
    publish(own_api, "diesonce", flaky(tmp_path, "os._exit(3)"))
    execution_id = start(own_api, "diesonce", [{"hp": 1.0, "wt": 1.0}, {"hp": 2.0, "wt": 1.0}], itemRetries=1)
    final = wait_until_finished(own_api, "diesonce", execution_id)
    assert (final["state"], final["failedItemCount"]) == ("complete", 0), final
    for row in results(own_api, "diesonce", execution_id):
        assert (row["success"], row["attempt"]) == (True, 2), row
        assert "worker process running this row died" in row["attempts"][0]["errorMessage"]


def test_a_resumed_batch_over_its_policy_stops_at_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    password = "policy-restart-password"
    records = [{"hp": -1.0, "wt": 0.0}] * 3 + [{"hp": float(i), "wt": 1.0} for i in range(40)]
    slow = FAILS_NEGATIVE.replace("0.05", "0.5")
    with running_server(data_dir, workers=1, admin_password=password) as server:
        api = authorized(server)
        publish(api, "resumed", slow)
        execution_id = start(api, "resumed", records)  # no policy yet
        deadline = time.monotonic() + 240
        while api.get(f"/api/resumed/v1/batch/{execution_id}", params={"limit": 1}).json()["failedItemCount"] < 3:
            assert time.monotonic() < deadline, "the failing rows never finished"
            time.sleep(0.1)
        api.close()
    # While the server is down, the batch gets a policy its finished rows already break (as a batch started with
    # one and stopped before it was judged: the judgement is the resumed engine's).
    settings = Settings(data_dir=data_dir)
    engine = _db.create_engine(settings.database)
    with engine.begin() as conn:
        conn.execute(sa.update(_db.batches).where(_db.batches.c.id == execution_id).values(max_failed_items=2))
        query = sa.select(_db.batches.c.complete_count).where(_db.batches.c.id == execution_id)
        complete_before = conn.execute(query).scalar_one()
    engine.dispose()
    with running_server(data_dir, workers=1, admin_password=password) as server:
        api = authorized(server)
        final = wait_until_finished(api, "resumed", execution_id)
        assert final["state"] == "failed", final
        assert "maxFailedItems=2" in final["errorMessage"], final
        rows = results(api, "resumed", execution_id)
        assert [r["index"] for r in rows] == list(range(len(records)))
        assert [r["itemState"] for r in rows[:3]] == ["failed"] * 3
        assert final["canceledItemCount"] > 0, final
        assert {r["itemState"] for r in rows[3:]} <= {"complete", "canceled"}
        # Judged before any row ran again: not one more row ran.
        assert final["completedItemCount"] - final["failedItemCount"] == complete_before, final
        api.close()


def authorized(server: RunningServer) -> httpx.Client:
    token = login(server)["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


@pytest.fixture(scope="module")
def sdk_client(own_server: RunningServer) -> Iterator[batchscore.Client]:
    with batchscore.Client(own_server.url, username="admin", password=own_server.admin_password) as made:
        yield made


def test_sdk_item_retries_and_every_attempt(
    own_api: httpx.Client, sdk_client: batchscore.Client, tmp_path: Path
) -> None:
    publish(own_api, "sdkflaky", flaky(tmp_path, "raise batchscore.Retryable('sdk: once more')"))
    service = sdk_client.get_service("sdkflaky", "v1")
    status = service.batch([{"hp": 1.0, "wt": 1.0}], item_retries=1).start().wait(progress=False)
    assert status.state == batchscore.BatchState.COMPLETE
    row = status.execution(0)
    assert (row.success, row.attempt) == (True, 2)
    assert [attempt.attempt for attempt in row.attempts] == [1]
    assert "sdk: once more" in row.attempts[0].error_message
    assert isinstance(row.attempts[0], batchscore.ExecutionAttempt)


def test_sdk_failure_policy_raises_batch_failed(own_api: httpx.Client, sdk_client: batchscore.Client) -> None:
    publish(own_api, "sdkpolicy", FAILS_NEGATIVE)
    records = [{"hp": -1.0, "wt": 0.0}] + [{"hp": float(i), "wt": 0.0} for i in range(40)]
    batch = sdk_client.get_service("sdkpolicy", "v1").batch(records, parallel_count=1, max_failed_items=0).start()
    with pytest.raises(batchscore.BatchFailedError) as raised:
        batch.wait(progress=False)
    status = raised.value.batch
    assert "maxFailedItems=0" in str(status.error_message)
    assert status.canceled_item_count > 0


def test_async_sdk_item_retries_and_failure_policy(
    own_server: RunningServer, own_api: httpx.Client, tmp_path: Path
) -> None:
    publish(own_api, "asyncflaky", flaky(tmp_path, "raise batchscore.Retryable('async: once more')"))
    publish(own_api, "asyncpolicy", FAILS_NEGATIVE)

    async def scenario() -> tuple[batchscore.BatchStatus, batchscore.BatchStatus]:
        async with batchscore.AsyncClient(
            own_server.url, username="admin", password=own_server.admin_password
        ) as client:
            flaky_service = await client.get_service("asyncflaky", "v1")
            retried = await (await flaky_service.batch([{"hp": 3.0, "wt": 1.0}], item_retries=2).start()).wait(
                progress=False
            )
            policy_service = await client.get_service("asyncpolicy", "v1")
            records = [{"hp": -1.0, "wt": 0.0}] * 3 + [{"hp": 1.0, "wt": 0.0}] * 30
            batch = await policy_service.batch(
                records, parallel_count=1, max_failure_ratio=0.5, min_failure_sample=2
            ).start()
            with pytest.raises(batchscore.BatchFailedError) as raised:
                await batch.wait(progress=False)
            return retried, raised.value.batch

    retried, stopped = asyncio.run(scenario())
    row = retried.execution(0)
    assert (row.success, row.attempt, len(row.attempts)) == (True, 2, 1)
    assert "async: once more" in row.attempts[0].error_message
    assert "maxFailureRatio=0.5" in str(stopped.error_message)


@pytest.fixture(scope="module")
def cli_env(own_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config = tmp_path_factory.mktemp("policy-cli-config")
    base = clean_env(config)
    run(base, "login", "--url", own_server.url, "--username", "admin", "--password", own_server.admin_password)
    return clean_env(config, BATCHSCORE_URL=own_server.url)


def test_cli_retries_and_failure_policy(own_api: httpx.Client, cli_env: dict[str, str], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    publish(own_api, "cliflaky", flaky(markers, "raise batchscore.Retryable('cli: once more')"))
    records = tmp_path / "records.ndjson"
    records.write_text("".join(json.dumps({"hp": hp, "wt": 1.0}) + "\n" for hp in (1.0, 2.0)))
    started = run(cli_env, "batch", "start", "cliflaky", "v1", "--input", str(records), "--retries", "2", "--wait")
    execution_id = started.stdout.splitlines()[0].strip()
    results_json = run_json(cli_env, "batch", "results", execution_id)
    for row in results_json["results"]:
        assert (row["success"], row["attempt"]) == (True, 2), row
        assert [a["attempt"] for a in row["attempts"]] == [1], row
        assert "cli: once more" in row["attempts"][0]["error_message"]

    publish(own_api, "clipolicy", FAILS_NEGATIVE)
    failing = tmp_path / "failing.ndjson"
    failing.write_text("".join(json.dumps({"hp": hp, "wt": 1.0}) + "\n" for hp in [-1.0, -2.0] + [1.0] * 40))
    stopped = run(
        cli_env,
        "batch",
        "start",
        "clipolicy",
        "v1",
        "--input",
        str(failing),
        "--parallel",
        "1",
        "--max-failed",
        "1",
        "--wait",
        expect=3,
    )
    assert "maxFailedItems=1" in stopped.stderr
