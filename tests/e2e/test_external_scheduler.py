"""`--scheduler ADDR`: batches run on an existing Dask cluster (a separate scheduler and worker process)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batchscore_server import running_server
from tests.e2e._dask_cluster import dask_cluster
from tests.e2e.conftest import login, publish, wait_until_finished


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("dask"), worker_processes=1, workers_each=2) as address:
        yield address


def wait_for_workers(status_url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(status_url, timeout=120).json()["components"]["cluster"]["details"]["workers"] < count:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_batches_run_on_an_existing_cluster(scheduler_address: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "data", workers=1, scheduler=scheduler_address) as server:
        wait_for_workers(f"{server.url}/status", 2)
        token = login(server)["access_token"]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            publish(api, "remote", "import os\nanswer = hp + wt\nprint(os.getpid())\n")
            records = [{"hp": float(i), "wt": 1.0} for i in range(20)]
            execution_id = api.post("/api/remote/v1/batch", json=records).json()["batchExecutionId"]
            final = wait_until_finished(api, "remote", execution_id)
            assert final["completedItemCount"] == 20
            results = api.get(f"/api/remote/v1/batch/{execution_id}").json()["batchExecutionResults"]
            assert [r["outputParameters"]["answer"] for r in results] == [i + 1.0 for i in range(20)]
            worker_pids = {r["consoleOutput"].strip() for r in results}
            assert str(os.getpid()) not in worker_pids
