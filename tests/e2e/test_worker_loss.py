"""Rows lost with a worker process run again; only the row that times out, or keeps killing workers, fails."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client as DaskClient

from batchscore_server import RunningServer, running_server
from tests.e2e.conftest import login, publish, wait_until_finished

SLEEPS_HP = "import time\ntime.sleep(hp)\nanswer = hp + wt\n"


# One worker: every row after a timed-out one is sent to the worker being killed (its thread looks free to the
# scheduler once the timed-out task is canceled) or waits for its replacement, so each of them meets the kill.
@pytest.fixture(scope="module")
def one_worker_server() -> Iterator[RunningServer]:
    with running_server(workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def api(one_worker_server: RunningServer) -> Iterator[httpx.Client]:
    token = login(one_worker_server)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=one_worker_server.url, headers=headers, timeout=120) as client:
        yield client


def results_of(api: httpx.Client, name: str, execution_id: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = api.get(f"/api/{name}/v1/batch/{execution_id}").json()
    return list(body["batchExecutionResults"])


def test_rows_that_meet_a_timeout_kill_are_run_again(api: httpx.Client) -> None:
    publish(api, "sleepy", SLEEPS_HP)
    records = [{"hp": 600.0, "wt": 0.0}] + [{"hp": 0.0, "wt": float(i)} for i in range(1, 4)]
    started = api.post("/api/sleepy/v1/batch", params={"itemTimeout": 1.5, "parallelCount": 2}, json=records)
    execution_id = started.json()["batchExecutionId"]
    final = wait_until_finished(api, "sleepy", execution_id)
    results = results_of(api, "sleepy", execution_id)
    assert [(r["index"], r["success"]) for r in results] == [(0, False), (1, True), (2, True), (3, True)], results
    assert "timed out" in results[0]["errorMessage"]
    assert final["failedItemCount"] == 1


def kill_worker(dask_worker: Any) -> None:  # runs in the nanny, as an operator's or the OOM killer's kill would
    os.kill(dask_worker.pid, signal.SIGKILL)


def test_a_row_lost_with_a_worker_killed_from_outside_runs_again(api: httpx.Client, tmp_path: Path) -> None:
    # The row's first run waits to be killed; the second one (the marker exists) finishes at once. Before the fix
    # a row alone in its task was failed for any death of its worker, as if it had caused it.
    marker = tmp_path / "first-run"
    code = (
        f"import os, time\nif not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n    time.sleep(600)\nanswer = hp + wt\n"
    )
    publish(api, "lost", code)
    # itemTimeout makes every row a task of its own.
    started = api.post("/api/lost/v1/batch", params={"itemTimeout": 300}, json=[{"hp": 1.0, "wt": 2.0}])
    execution_id = started.json()["batchExecutionId"]
    while not marker.exists():  # the row is about to run (a busy machine may show the batch pending a while)
        assert api.get(f"/api/lost/v1/batch/{execution_id}").json()["state"] in ("pending", "inProgress")
        time.sleep(0.05)
    address = api.get("/status").json()["components"]["cluster"]["details"]["scheduler"]
    with DaskClient(address, timeout=60) as dask:
        dask.run(kill_worker, nanny=True)
    final = wait_until_finished(api, "lost", execution_id)
    results = results_of(api, "lost", execution_id)
    assert [(r["success"], r["outputParameters"]) for r in results] == [(True, {"answer": 3})], results
    assert final["failedItemCount"] == 0
