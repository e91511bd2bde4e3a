"""Storage hardening on a real server: the data directory's lock, and retry after the service changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from batchscore_server import SetupError, running_server
from batchscore_server._embedded import RunningServer
from tests.e2e.conftest import publish, wait_until_finished


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
