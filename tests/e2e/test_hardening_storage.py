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
