"""Storage hardening on a real server: the data directory's lock, and retry after the service changed."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from batchscore_server import SetupError, _db, running_server
from batchscore_server._embedded import RunningServer
from batchscore_server._store import Store
from tests.e2e.conftest import publish, wait_until_finished
from tests.server.test_storage_hardening import store_finished_batch


def test_a_second_server_on_a_data_directory_refuses_to_start(
    own_server: RunningServer, own_api: httpx.Client, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.txt"
    # Every row notes that it ran; a second server resuming the same batch would note rows twice.
    code = (
        f"import time\ntime.sleep(0.01)\nwith open({str(ran)!r}, 'a') as f:\n"
        "    f.write(f'{int(hp)}\\n')\nanswer = hp\n"
    )
    publish(own_api, "lockedrows", code)
    records = [{"hp": float(i), "wt": 0.0} for i in range(200)]
    execution_id = own_api.post("/api/lockedrows/v1/batch", json=records).json()["batchExecutionId"]

    data_dir = own_server.settings.data_dir
    with pytest.raises(SetupError) as refused, running_server(data_dir=data_dir, start_timeout=120):
        pass
    message = str(refused.value)
    assert "database stage" in message
    assert str(data_dir) in message
    assert "in use" in message
    assert "pid" in message

    # The first server keeps working: the batch completes, and every row ran exactly once.
    final = wait_until_finished(own_api, "lockedrows", execution_id)
    assert final["state"] == "complete"
    counts = Counter(ran.read_text().split())
    assert sorted(int(index) for index in counts) == list(range(200))
    assert [index for index, times in counts.items() if times > 1] == []  # rows run twice: 0
    assert own_api.get("/status").status_code == 200


def _failed_batch(api: httpx.Client, name: str) -> str:
    """A finished batch of ``name`` (code: fails on hp 1) with one failed row."""
    publish(api, name, "assert hp != 1, 'hp is 1'\nanswer = hp\n")
    records = [{"hp": 0.0, "wt": 0.0}, {"hp": 1.0, "wt": 0.0}]
    execution_id: str = api.post(f"/api/{name}/v1/batch", json=records).json()["batchExecutionId"]
    assert wait_until_finished(api, name, execution_id)["failedItemCount"] == 1
    return execution_id


def test_retry_after_the_service_was_updated_is_refused(own_api: httpx.Client) -> None:
    execution_id = _failed_batch(own_api, "patchedretry")
    assert own_api.patch("/services/patchedretry/v1", json={"code": "answer = -1\n"}).status_code == 200
    refused = own_api.post(f"/api/patchedretry/v1/batch/{execution_id}/retry")
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "version"
    assert "service patchedretry version v1 was updated since the batch started" in refused.json()["message"]
    # Nothing was re-run: the failed row keeps its result.
    assert own_api.get(f"/api/patchedretry/v1/batch/{execution_id}").json()["failedItemCount"] == 1


def test_retry_after_the_service_was_deleted_is_refused(own_api: httpx.Client) -> None:
    execution_id = _failed_batch(own_api, "deletedretry")
    assert own_api.delete("/services/deletedretry/v1").status_code == 200
    refused = own_api.post(f"/api/deletedretry/v1/batch/{execution_id}/retry")
    assert refused.status_code == 409, refused.text
    assert "service deletedretry version v1 was deleted since the batch started" in refused.json()["message"]


def test_retry_of_an_unchanged_service_runs_its_version(own_api: httpx.Client) -> None:
    execution_id = _failed_batch(own_api, "sameretry")
    assert own_api.post(f"/api/sameretry/v1/batch/{execution_id}/retry").status_code == 202
    assert wait_until_finished(own_api, "sameretry", execution_id)["failedItemCount"] == 1  # the same code ran


def _anonymous_rss() -> int:
    """This process's resident anonymous memory in bytes (the server runs in it); the database's mmap is left out."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


class _SlowReader(threading.Thread):
    """Polls every result of a batch, reads the first megabyte, then waits for ``go`` before it reads the rest.

    The body goes to ``keep`` when given (a file: kept in memory, it would count as the server's).
    """

    def __init__(self, url: str, token: str, go: threading.Event, keep: Path | None) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.go, self.keep = url, token, go, keep
        self.started = threading.Event()
        self.size = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            with (
                httpx.stream("GET", self.url, headers=headers, timeout=300) as response,
                open(self.keep or os.devnull, "wb") as kept,
            ):
                for part in response.iter_bytes(64 * 1024):
                    self.size += len(part)
                    kept.write(part)
                    if self.size >= 1024 * 1024 and not self.started.is_set():
                        self.started.set()
                        self.go.wait(300)
        except BaseException as error:
            self.error = error
        finally:
            self.started.set()


def test_slow_readers_of_every_result_of_a_large_batch_hold_bounded_memory(
    own_server: RunningServer, own_api: httpx.Client, tmp_path: Path
) -> None:
    settings = own_server.settings
    engine = _db.create_engine(settings.database_path)
    rows = 100_000
    answer = {"success": True, "errorMessage": "", "consoleOutput": "", "outputParameters": {"answer": "x" * 400}}
    try:
        batch_id = store_finished_batch(Store(settings, engine), "bigpoll", rows, answer)
    finally:
        engine.dispose()
    token = own_api.headers["Authorization"].split()[1]
    url = f"{own_server.url}/api/bigpoll/v1/batch/{batch_id}"
    go = threading.Event()
    before = _anonymous_rss()
    peak = before
    readers = [_SlowReader(url, token, go, tmp_path / "body.json" if index == 0 else None) for index in range(6)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 300
    # Every reader has had its first megabyte and stalls: what the server holds for them now is its cost.
    while not all(reader.started.is_set() for reader in readers) and time.monotonic() < deadline:
        peak = max(peak, _anonymous_rss())
        time.sleep(0.01)
    peak = max(peak, _anonymous_rss())
    go.set()
    for reader in readers:
        while reader.is_alive() and time.monotonic() < deadline:
            peak = max(peak, _anonymous_rss())
            reader.join(0.01)
    assert [reader.error for reader in readers] == [None] * 6
    growth_mb = (peak - before) / 2**20
    print(f"6 slow readers of {rows} rows ({readers[0].size / 2**20:.0f} MB each): anonymous RSS +{growth_mb:.0f} MB")
    assert len({reader.size for reader in readers}) == 1  # every reader got the whole answer
    polled = json.loads((tmp_path / "body.json").read_bytes())
    assert [result["index"] for result in polled["batchExecutionResults"]] == list(range(rows))
    assert polled["completedItemCount"] == rows
    assert polled["batchExecutionResults"][-1]["outputParameters"]["answer"] == "x" * 400
    assert growth_mb < 300  # 1,185 MB before polls were streamed, 75 MB after


def test_rows_printing_megabytes_keep_a_bounded_console_and_server_memory(own_api: httpx.Client) -> None:
    # Each row prints 10 MB: the console is capped (1 MiB by default), so neither the results nor the server's
    # memory carry 400 MB of prints.
    publish(own_api, "loud", "import sys\nfor _ in range(10):\n    sys.stdout.write('x' * 2**20)\nanswer = hp\n")
    before = _anonymous_rss()
    records = [{"hp": float(i), "wt": 0.0} for i in range(40)]
    execution_id = own_api.post("/api/loud/v1/batch", json=records).json()["batchExecutionId"]
    final = wait_until_finished(own_api, "loud", execution_id)
    growth_mb = (_anonymous_rss() - before) / 2**20
    print(f"40 rows x 10 MB of prints: anonymous RSS +{growth_mb:.0f} MB")
    assert final["state"] == "complete"
    assert final["failedItemCount"] == 0
    first = own_api.get(f"/api/loud/v1/batch/{execution_id}", params={"since": 0, "limit": 1}).json()
    console = first["batchExecutionResults"][0]["consoleOutput"]
    assert console.startswith("x" * 2**20 + "\n[console output truncated: ")
    assert len(console) < 2**20 + 1000
    assert growth_mb < 200  # +630 MB that stayed, before the cap


def test_a_consume_whose_output_file_is_over_its_cap_fails_naming_it(own_api: httpx.Client) -> None:
    code = "with open('big.bin', 'wb') as f:\n    for _ in range(150):\n        f.write(b'x' * 2**20)\nanswer = hp\n"
    publish(own_api, "bigfile", code, outputFileNames=["big.bin"])
    before = _anonymous_rss()
    answer = own_api.post("/api/bigfile/v1", json={"hp": 1, "wt": 0})
    growth_mb = (_anonymous_rss() - before) / 2**20
    print(f"a consume with a 150 MiB output file: anonymous RSS +{growth_mb:.0f} MB")
    assert answer.status_code == 200
    assert answer.json()["success"] is False
    assert "output file 'big.bin' is 157286400 bytes, over the server's limit" in answer.json()["errorMessage"]
    assert answer.json()["outputFiles"] == {}
    assert growth_mb < 100  # +770 MB before: the file came back base64-encoded, then as JSON
