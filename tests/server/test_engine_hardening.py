"""The batch engine outlives database write errors (a full disk): retried, then the batch fails; never wedged."""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
import typer

from batchscore_server import _batch, cli, running_server
from batchscore_server._store import Store
from tests.e2e.conftest import login, publish, wait_until_finished

RECORDS = [{"hp": 1.0, "wt": float(i)} for i in range(5)]


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with running_server(workers=1) as server:
        token = login(server)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            publish(client, "plain", "answer = hp + wt\n")
            yield client


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def disk_error() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))


def failing(original: Callable[..., Any], error: Callable[[], BaseException], times: float) -> Callable[..., Any]:
    """``original``, raising ``error()`` on its first ``times`` calls."""
    calls = 0

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error()
        return original(*args, **kwargs)

    return call


def run(api: httpx.Client) -> tuple[str, dict[str, Any]]:
    started = api.post("/api/plain/v1/batch", json=RECORDS)
    assert started.status_code == 202, started.text
    execution_id = started.json()["batchExecutionId"]
    return execution_id, wait_until_finished(api, "plain", execution_id)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batch, "DB_RETRY_SECONDS", 1.0, raising=False)
    monkeypatch.setattr(_batch, "DB_RETRY_MAX_WAIT_SECONDS", 0.2, raising=False)


@pytest.mark.parametrize("error", [disk_full, disk_error])
def test_a_write_error_that_passes_loses_no_row(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException]
) -> None:
    monkeypatch.setattr(Store, "record_attempts", failing(Store.record_attempts, error, 3))
    _, final = run(api)
    assert (final["state"], final["completedItemCount"]) == ("complete", len(RECORDS)), final


@pytest.mark.usefixtures("quick_retries")
def test_a_write_error_that_lasts_fails_the_batch_with_the_reason(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Store, "record_attempts", failing(Store.record_attempts, disk_full, float("inf")))
    # The first attempt to end the batch fails too (the disk is still full): before the fix the engine task died
    # there and the batch stayed inProgress for good.
    monkeypatch.setattr(Store, "fail_batch", failing(Store.fail_batch, disk_full, 1))
    execution_id, final = run(api)
    assert final["state"] == "failed", final
    rows = api.get(f"/api/plain/v1/batch/{execution_id}").json()["batchExecutionResults"]
    assert rows
    assert all("No space left on device" in row["errorMessage"] for row in rows), rows


@pytest.mark.usefixtures("quick_retries")
def test_a_batch_that_cannot_be_written_at_all_is_left_for_resume_and_logged(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="batchscore_server.batch")
    monkeypatch.setattr(Store, "record_attempts", failing(Store.record_attempts, disk_full, float("inf")))
    monkeypatch.setattr(Store, "fail_batch", failing(Store.fail_batch, disk_full, float("inf")))
    started = api.post("/api/plain/v1/batch", json=RECORDS)
    execution_id = started.json()["batchExecutionId"]
    polls = 0
    while not any("could not be marked failed" in record.getMessage() for record in caplog.records):
        polls += 1
        assert polls < 1200, "the engine never gave up on the batch"
        state = api.get(f"/api/plain/v1/batch/{execution_id}", params={"limit": 1}).json()["state"]
        assert state in ("pending", "inProgress")
        time.sleep(0.2)
    state = api.get(f"/api/plain/v1/batch/{execution_id}", params={"limit": 1}).json()["state"]
    assert state == "inProgress"  # unfinished in the database: the next start resumes it
    monkeypatch.undo()
    _, final = run(api)  # the engine goes on
    assert final["state"] == "complete", final


@pytest.mark.parametrize(("text", "size"), [("2GiB", 2 * 2**30), ("300MB", 300 * 10**6), ("1000000", 10**6)])
def test_worker_memory_is_read_as_a_size(text: str, size: int) -> None:
    assert cli._memory_bytes(text) == size
    assert cli._memory_bytes("") is None  # set empty: Dask's default


@pytest.mark.parametrize("text", ["lots", "0", "-5GiB", "GiB"])
def test_a_worker_memory_that_is_not_a_size_stops_serve(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        cli._memory_bytes(text)
    assert "--worker-memory" in capsys.readouterr().err


def test_a_retry_while_the_last_run_is_still_ending_runs(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(api, "halffails", "if wt == 0:\n    raise ValueError('no weight')\nanswer = hp + wt\n")
    original = Store.complete_batch
    retried = threading.Event()

    def slow_to_end(self: Store, batch_id: str) -> None:
        original(self, batch_id)
        retried.wait(120)  # the batch is complete for every reader; its engine task ends once the retry is in

    monkeypatch.setattr(Store, "complete_batch", slow_to_end)
    started = api.post("/api/halffails/v1/batch", json=[{"hp": 1.0, "wt": float(i)} for i in range(4)])
    execution_id = started.json()["batchExecutionId"]
    first = wait_until_finished(api, "halffails", execution_id)
    assert (first["state"], first["failedItemCount"]) == ("complete", 1)
    monkeypatch.setattr(Store, "complete_batch", original)
    try:
        assert api.post(f"/api/halffails/v1/batch/{execution_id}/retry").status_code == 202
    finally:
        retried.set()
    # Before the fix the retried row waited for a restart: the launch saw the ending run's task and did nothing.
    final = wait_until_finished(api, "halffails", execution_id, timeout=60)
    assert (final["state"], final["failedItemCount"]) == ("complete", 1)
