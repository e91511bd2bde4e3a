"""Retention end to end: a batch started with ``expiresAfter`` expires, and the sweep deletes its rows and files.

The sweep is run by the test with a time past the batch's ``expiresAt`` (the store's own sweep, on the server's
database and artifacts), so nothing waits for the retention. These tests have a server of their own: a sweep at a
later time would also expire other tests' batches.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import batchscore
from batchscore_server import RunningServer, _db
from batchscore_server._store import Store
from tests.e2e.conftest import publish, wait_until_finished
from tests.e2e.test_cli import clean_env, run, run_json

DRAW = "with open('row.txt', 'w') as handle:\n    handle.write(str(hp))\nif hp < 0:\n    raise ValueError('negative')\n"
DRAW += "answer = hp + wt\n"
RECORDS = [{"hp": 1.0, "wt": 2.0}, {"hp": -1.0, "wt": 2.0}, {"hp": 3.0, "wt": 2.0}]


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sweep(server: RunningServer, now: float) -> list[str]:
    """Run the server's retention sweep as of ``now`` (a test hook: the store's sweep on the server's database)."""
    engine = _db.create_engine(server.settings.database)
    try:
        return Store(server.settings, engine).expire_due("test-sweep", now, 50)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def drawn(own_api: httpx.Client) -> None:
    publish(own_api, "keepdraw", DRAW, outputFileNames=["row.txt"])


def start_and_finish(api: httpx.Client, **params: Any) -> dict[str, Any]:
    started = api.post("/api/keepdraw/v1/batch", params=params, json=RECORDS)
    assert started.status_code == 202, started.text
    return wait_until_finished(api, "keepdraw", started.json()["batchExecutionId"])


def test_an_expired_batch_keeps_its_summary_and_its_files_and_retry_are_gone(
    own_server: RunningServer, own_api: httpx.Client, drawn: None
) -> None:
    final = start_and_finish(own_api, expiresAfter=60)
    execution_id = final["batchExecutionId"]
    url = f"/api/keepdraw/v1/batch/{execution_id}"
    whole = own_api.get(url).json()
    assert whole["expired"] is False
    assert _time(whole["expiresAt"]) == pytest.approx(_time(whole["completionTime"]) + 60, abs=0.01)
    assert len(whole["batchExecutionResults"]) == 3
    assert own_api.get(f"{url}/0/files").json() == ["row.txt"]
    artifacts = own_server.settings.artifacts_dir / execution_id
    assert artifacts.is_dir()
    # Another batch of the default retention (30 days) is left alone by the same sweep.
    other = start_and_finish(own_api)
    assert (
        _time(own_api.get(f"/api/keepdraw/v1/batch/{other['batchExecutionId']}").json()["expiresAt"])
        > _time(whole["expiresAt"]) + 29 * 86400
    )

    assert sweep(own_server, _time(whole["expiresAt"]) - 1) == []  # not yet
    assert sweep(own_server, _time(whole["expiresAt"]) + 1) == [execution_id]

    after = own_api.get(url).json()
    assert after["expired"] is True
    assert after["batchExecutionResults"] == []
    assert after["cursor"] == whole["cursor"]  # still valid: nothing comes after it
    summary_fields = ("state", "totalItemCount", "completedItemCount", "failedItemCount", "completionTime")
    assert {key: after[key] for key in summary_fields} == {key: whole[key] for key in summary_fields}
    assert own_api.get(url, params={"since": whole["cursor"]}).json()["batchExecutionResults"] == []
    assert not artifacts.exists()
    for gone in (
        own_api.get(f"{url}/0/files"),
        own_api.get(f"{url}/0/files/row.txt"),
        own_api.post(f"{url}/retry"),
    ):
        assert gone.status_code == 410, gone.text
        assert gone.json()["field"] == "executionId"
        assert f"batch {execution_id} expired at " in gone.json()["message"]
    # The other batch is whole.
    assert own_api.get(f"/api/keepdraw/v1/batch/{other['batchExecutionId']}/2/files").json() == ["row.txt"]


@pytest.fixture(scope="module")
def expired_id(own_server: RunningServer, own_api: httpx.Client, drawn: None) -> str:
    """A batch of keepdraw (one row failed), expired by the sweep."""
    final = start_and_finish(own_api, expiresAfter=60)
    expires_at = _time(own_api.get(f"/api/keepdraw/v1/batch/{final['batchExecutionId']}").json()["expiresAt"])
    assert final["batchExecutionId"] in sweep(own_server, expires_at + 1)
    return str(final["batchExecutionId"])


@pytest.fixture(scope="module")
def sdk_client(own_server: RunningServer) -> Iterator[batchscore.Client]:
    with batchscore.Client(own_server.url, username="admin", password=own_server.admin_password) as client:
        yield client


def test_the_sdk_sees_an_expired_batch_and_raises_expired_error(sdk_client: batchscore.Client, expired_id: str) -> None:
    batch = sdk_client.get_service("keepdraw", "v1").get_batch(expired_id)
    status = batch.results()
    assert status.expired is True
    assert status.expires_at  # ISO 8601
    assert list(status.results) == []
    assert status.failed_item_count == 1
    with pytest.raises(batchscore.ExpiredError) as caught:
        batch.list_artifacts(0)
    assert (caught.value.status_code, caught.value.field) == (410, "executionId")
    with pytest.raises(batchscore.ExpiredError):
        batch.artifact(0, "row.txt")
    with pytest.raises(batchscore.ExpiredError):
        batch.retry_failed()


def test_the_async_sdk_raises_expired_error(own_server: RunningServer, expired_id: str) -> None:
    async def main() -> None:
        async with batchscore.AsyncClient(
            own_server.url, username="admin", password=own_server.admin_password
        ) as client:
            batch = (await client.get_service("keepdraw", "v1")).get_batch(expired_id)
            assert (await batch.results()).expired is True
            with pytest.raises(batchscore.ExpiredError):
                await batch.list_artifacts(0)
            with pytest.raises(batchscore.ExpiredError):
                await batch.retry_failed()

    asyncio.run(main())


def test_the_cli_shows_expiry_and_reports_a_gone_batch(
    own_server: RunningServer, expired_id: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path)
    run(env, "login", "--url", own_server.url, "--username", "admin", "--password", own_server.admin_password)
    env = clean_env(tmp_path, BATCHSCORE_URL=own_server.url)
    status = run_json(env, "batch", "status", expired_id, "--service", "keepdraw", "--version", "v1", expect=1)
    assert status["expired"] is True
    assert status["expires_at"]
    shown = run(env, "batch", "status", expired_id, "--service", "keepdraw", "--version", "v1", expect=1).stdout
    assert re.search(r"expired\W+True", shown), shown
    assert re.search(r"expires at\W+20\d\d-", shown), shown
    retried = run(env, "batch", "retry", expired_id, "--service", "keepdraw", "--version", "v1", expect=5)
    assert "410" in retried.stderr
    assert f"batch {expired_id} expired at" in retried.stderr
