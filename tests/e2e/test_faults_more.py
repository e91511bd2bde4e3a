"""More faults: initCode that raises, a full disk under the artifacts, a Dask worker restart, a busy database."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from distributed import Client as DaskClient

from batchscore_server import RunningServer, running_server
from tests.e2e.conftest import login, publish, wait_until_finished


def init_raises_once_missing(model_file: Path) -> str:
    """initCode that starts while ``model_file`` exists (the publish checks it does) and fails once it is removed."""
    return (
        f"import os\nif not os.path.exists({str(model_file)!r}):\n    raise RuntimeError('the model file is missing')\n"
    )


BIG_ARTIFACT = "open('big.bin', 'wb').write(b'x' * 300_000)\nanswer = hp\n"
SLOW = "import time\ntime.sleep(0.3)\nanswer = hp + wt\n"


def test_init_code_that_raises_fails_the_batch_with_the_reason(own_api: httpx.Client, tmp_path: Path) -> None:
    # An initCode that raises is refused at publish (tests/e2e/test_publish_check.py); one that broke after (its
    # model file went) fails the batch.
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"model")
    publish(own_api, "initRaises", "answer = hp", init_code=init_raises_once_missing(model_file))
    model_file.unlink()
    started = own_api.post("/api/initRaises/v1/batch", json=[{"hp": 1.0, "wt": 1.0}, {"hp": 2.0, "wt": 1.0}]).json()
    final = wait_until_finished(own_api, "initRaises", started["batchExecutionId"])
    assert final["state"] == "failed"
    assert "initCode failed" in final["errorMessage"]
    assert "the model file is missing" in final["errorMessage"]
    consumed = own_api.post("/api/initRaises/v1", json={"hp": 1, "wt": 1}).json()
    assert consumed["success"] is False
    assert "the model file is missing" in consumed["errorMessage"]


@pytest.fixture
def tiny_artifacts_server(tmp_path: Path) -> Iterator[httpx.Client]:
    data_dir = tmp_path / "data"
    artifacts = data_dir / "artifacts"
    artifacts.mkdir(parents=True)
    # A 512 KiB filesystem under the artifacts: the second 300 kB artifact does not fit (disk full).
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(artifacts)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.fail(f"this test needs root to mount a small tmpfs: {mounted.stderr.decode()}")
    try:
        with running_server(data_dir, workers=1) as server:
            token = login(server)["access_token"]
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
                yield api
    finally:
        subprocess.run(["umount", "-l", str(artifacts)], check=False)


def test_a_full_disk_fails_the_row_and_the_server_stays_healthy(tiny_artifacts_server: httpx.Client) -> None:
    api = tiny_artifacts_server
    publish(api, "bigFiles", BIG_ARTIFACT, outputFileNames=["big.bin"])
    records = [{"hp": float(i), "wt": 0.0} for i in range(3)]
    execution_id = api.post("/api/bigFiles/v1/batch", params={"parallelCount": 1}, json=records).json()[
        "batchExecutionId"
    ]
    final = wait_until_finished(api, "bigFiles", execution_id)
    assert final["state"] == "complete"
    results = api.get(f"/api/bigFiles/v1/batch/{execution_id}").json()["batchExecutionResults"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["success"] is True
    failed = [r for r in results if not r["success"]]
    assert failed, "the disk was full for at least one row"
    assert all("No space left on device" in r["errorMessage"] for r in failed)
    assert api.get("/status").json()["statusCode"] == "pass"
    assert api.post("/api/bigFiles/v1", json={"hp": 7, "wt": 0}).json()["outputParameters"]["answer"] == 7


def test_a_dask_worker_restart_mid_batch_loses_no_row(own_server: RunningServer, own_api: httpx.Client) -> None:
    publish(own_api, "restarted", SLOW)
    records = [{"hp": float(i), "wt": 1.0} for i in range(24)]
    execution_id = own_api.post("/api/restarted/v1/batch", params={"parallelCount": 2}, json=records).json()[
        "batchExecutionId"
    ]
    address = own_api.get("/status").json()["components"]["cluster"]["details"]["scheduler"]
    deadline = time.monotonic() + 60
    while own_api.get(f"/api/restarted/v1/batch/{execution_id}").json()["completedItemCount"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with DaskClient(address, timeout=30) as dask:
        dask.restart_workers([next(iter(dask.scheduler_info()["workers"]))])
    final = wait_until_finished(own_api, "restarted", execution_id)
    assert final["state"] == "complete"
    results = own_api.get(f"/api/restarted/v1/batch/{execution_id}").json()["batchExecutionResults"]
    assert [r["index"] for r in results] == list(range(24))  # exactly one result per row
    for result in results:
        assert result["success"] or "worker process running this row died" in result["errorMessage"]
    if final["failedItemCount"]:
        own_api.post(f"/api/restarted/v1/batch/{execution_id}/retry")
        again = wait_until_finished(own_api, "restarted", execution_id)
        assert again["failedItemCount"] == 0


def test_a_busy_database_delays_but_loses_nothing(own_server: RunningServer, own_api: httpx.Client) -> None:
    publish(own_api, "busyDb", SLOW)
    records = [{"hp": float(i), "wt": 1.0} for i in range(12)]
    execution_id = own_api.post("/api/busyDb/v1/batch", params={"parallelCount": 2}, json=records).json()[
        "batchExecutionId"
    ]
    released = threading.Event()

    def hold_the_write_lock() -> None:
        connection = sqlite3.connect(own_server.settings.database_path, timeout=30)
        connection.execute("BEGIN EXCLUSIVE")
        released.wait(3)
        connection.rollback()
        connection.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        # Readers are not blocked in WAL mode: polling goes on while writers wait for the lock.
        status = own_api.get(f"/api/busyDb/v1/batch/{execution_id}")
        assert status.status_code == 200
    finally:
        time.sleep(2)
        released.set()
        holder.join()
    final = wait_until_finished(own_api, "busyDb", execution_id)
    assert final["state"] == "complete"
    results = own_api.get(f"/api/busyDb/v1/batch/{execution_id}").json()["batchExecutionResults"]
    assert [r["index"] for r in results] == list(range(12))
    assert all(r["success"] for r in results)
