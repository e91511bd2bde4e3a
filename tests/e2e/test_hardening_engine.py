"""Engine hardening (issue 13): timeouts cannot starve the cluster, any BaseException fails only its row, processes
a row forks die with it, and a row over the workers' memory limit fails alone."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from batchscore_server import RunningServer, _batch, running_server
from tests.e2e.conftest import login, publish, wait_until_finished

QUICK = "answer = hp + wt\n"
DEADLINE_SECONDS = 300.0  # generous: replacement workers took over 30 s to start on a busy 2-core machine


def _client(server: RunningServer) -> httpx.Client:
    token = login(server)["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def results_of(api: httpx.Client, name: str, execution_id: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = api.get(f"/api/{name}/v1/batch/{execution_id}").json()
    return list(body["batchExecutionResults"])


def workers_now(api: httpx.Client) -> int:
    return int(api.get("/status").json()["components"]["cluster"]["details"]["workers"])


def run_batch(api: httpx.Client, name: str, records: list[dict[str, float]], **params: Any) -> dict[str, Any]:
    started = api.post(f"/api/{name}/v1/batch", params=params, json=records)
    assert started.status_code == 202, started.text
    return wait_until_finished(api, name, started.json()["batchExecutionId"], timeout=DEADLINE_SECONDS)


# Dask's LocalCluster gives up on a nanny whose worker has not come back within lost-worker-timeout (15 s by
# default): it closes it and never starts another. A replacement worker took longer than that on a busy machine
# (the "workers": 0); a tiny timeout makes that happen on every kill, however fast the machine.
@pytest.fixture(scope="module")
def impatient_cluster_server() -> Iterator[RunningServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(_batch.DASK_CONFIG, "distributed.deploy.lost-worker-timeout", "10ms")
        with running_server(workers=2) as server:
            yield server


def test_timed_out_rows_cannot_starve_the_cluster(impatient_cluster_server: RunningServer) -> None:
    with _client(impatient_cluster_server) as api:
        publish(api, "sleeper", "import time\ntime.sleep(600)\nanswer = hp + wt\n")
        publish(api, "quick", QUICK)
        records = [{"hp": 1.0, "wt": float(i)} for i in range(6)]
        final = run_batch(api, "sleeper", records, itemTimeout=1)
        assert (final["state"], final["failedItemCount"]) == ("complete", 6), final
        deadline = time.monotonic() + DEADLINE_SECONDS
        while workers_now(api) < 2:
            assert time.monotonic() < deadline, "the cluster did not get its workers back"
            time.sleep(0.2)
        after = run_batch(api, "quick", [{"hp": 1.0, "wt": float(i)} for i in range(10)])
        assert (after["state"], after["completedItemCount"]) == ("complete", 10), after


def test_an_item_timeout_below_one_second_is_refused(own_api: httpx.Client) -> None:
    publish(own_api, "quickmin", QUICK)
    refused = own_api.post("/api/quickmin/v1/batch", params={"itemTimeout": 0.5}, json=[{"hp": 1, "wt": 1}])
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == "itemTimeout"
    assert "at least 1" in refused.json()["message"]


RAISES = {
    "CancelledError": "import asyncio\nraise asyncio.CancelledError('row canceled itself')",
    "GeneratorExit": "raise GeneratorExit('row closed')",
    "KeyboardInterrupt": "raise KeyboardInterrupt('row interrupted')",
    "SystemExit": "raise SystemExit(3)",
    "Custom": "class Custom(BaseException):\n    pass\nraise Custom('row custom')",
}


@pytest.mark.parametrize("kind", sorted(RAISES))
def test_a_base_exception_fails_its_row_and_the_batch_goes_on(own_api: httpx.Client, kind: str) -> None:
    body = "\n".join("    " + line for line in RAISES[kind].splitlines())
    name = f"raises{kind.lower()}"
    publish(own_api, name, f"if wt == 1:\n{body}\nanswer = hp + wt\n")
    started = own_api.post(f"/api/{name}/v1/batch", json=[{"hp": 1.0, "wt": float(i)} for i in range(4)])
    final = wait_until_finished(own_api, name, started.json()["batchExecutionId"], timeout=DEADLINE_SECONDS)
    assert final["state"] == "complete", final
    results = results_of(own_api, name, started.json()["batchExecutionId"])
    assert [(r["index"], r["success"]) for r in results] == [(0, True), (1, False), (2, True), (3, True)], results
    assert kind in results[1]["errorMessage"]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def expect_gone(pids: list[int]) -> None:
    """Wait until the processes are gone; kill what is left either way, so no test leaves them running."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while not all(_gone(pid) for pid in pids):
            assert time.monotonic() < deadline, f"processes still running: {[p for p in pids if not _gone(p)]}"
            time.sleep(0.1)
    finally:
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


FORKS = "import subprocess\nchild = subprocess.Popen(['sleep', '1000'])\nprint(child.pid)\nanswer = hp + wt\n"


def test_processes_a_row_started_end_with_it(own_api: httpx.Client) -> None:
    publish(own_api, "forks", FORKS)
    started = own_api.post("/api/forks/v1/batch", json=[{"hp": 1.0, "wt": float(i)} for i in range(3)])
    final = wait_until_finished(own_api, "forks", started.json()["batchExecutionId"], timeout=DEADLINE_SECONDS)
    assert final["state"] == "complete", final
    results = results_of(own_api, "forks", started.json()["batchExecutionId"])
    pids = [int(r["consoleOutput"].split()[0]) for r in results]
    assert len(pids) == 3
    expect_gone(pids)


def test_processes_of_a_timed_out_row_end_with_its_worker(own_api: httpx.Client, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, time\nchild = subprocess.Popen(['sleep', '1000'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\ntime.sleep(600)\nanswer = hp + wt\n"
    )
    publish(own_api, "forkshangs", code)
    final = run_batch(own_api, "forkshangs", [{"hp": 1.0, "wt": 1.0}], itemTimeout=1)
    assert final["failedItemCount"] == 1, final
    expect_gone([int(pid_file.read_text())])


def test_a_consume_that_forks_leaves_no_process(own_api: httpx.Client) -> None:
    publish(own_api, "forksconsume", FORKS)
    # Three calls on a pool of two processes: a process's later calls are watched as well as its first.
    pids = []
    for _ in range(3):
        answer = own_api.post("/api/forksconsume/v1", json={"hp": 1, "wt": 2})
        assert answer.json()["success"] is True, answer.text
        pids.append(int(answer.json()["consoleOutput"].split()[0]))
    expect_gone(pids)


@pytest.fixture(scope="module")
def small_memory_api() -> Iterator[httpx.Client]:
    with running_server(workers=2, worker_memory_bytes=300 * 2**20) as server, _client(server) as api:
        yield api


def test_a_row_over_the_worker_memory_limit_fails_alone(small_memory_api: httpx.Client) -> None:
    # Holds 600 MiB (pages touched) long enough for the nanny's memory monitor to see it.
    code = "import time\nif wt == 1:\n    hog = b'x' * (600 * 2**20)\n    time.sleep(60)\nanswer = hp + wt\n"
    publish(small_memory_api, "hog", code)
    started = small_memory_api.post("/api/hog/v1/batch", json=[{"hp": 1.0, "wt": float(i)} for i in range(4)])
    execution_id = started.json()["batchExecutionId"]
    final = wait_until_finished(small_memory_api, "hog", execution_id, timeout=DEADLINE_SECONDS)
    assert final["state"] == "complete", final
    results = results_of(small_memory_api, "hog", execution_id)
    assert [(r["index"], r["success"]) for r in results] == [(0, True), (1, False), (2, True), (3, True)], results
    assert "memory limit" in results[1]["errorMessage"]
