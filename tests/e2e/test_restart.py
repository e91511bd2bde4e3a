"""kill -9 of the server mid-batch, then a restart on the same data dir: every row ends with exactly one result."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._postgres import create_database, running_postgres, unavailable_reason
from tests.e2e.conftest import NUMERIC_IO

PASSWORD = "restart-test-password"
ROWS = 1000
WRITES_A_FILE = "import time\ntime.sleep(0.01)\nopen('out.txt', 'w').write(str(hp))\nanswer = hp * 10\n"


# `serve --port 0` binds a port the system picks, before anything else, and logs it once the server is ready.
LISTENING = re.compile(rb"Uvicorn running on (http://[\d.]+:\d+)")
START_TIMEOUT_S = 600  # a Dask cluster and a process pool start first: minutes on a machine shared by test runs


def start_server(data_dir: Path, log: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``batchscore serve`` (with more ``options``) in its own process group; returns it and its URL."""
    env = {**os.environ, "BATCHSCORE_ADMIN_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        "-c",
        "from batchscore.cli import main; main()",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        "--workers",
        "2",
        *options,
    ]
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_bytes()[offset:])
        if found:
            return process, found.group(1).decode()
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError("the server did not start:\n" + log.read_text(errors="replace"))


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the server and its Dask workers, all at once
    process.wait(timeout=30)


def client(url: str) -> httpx.Client:
    token = httpx.post(f"{url}/login", json={"username": "admin", "password": PASSWORD}, timeout=120).json()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_options(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """``serve`` options of the database: SQLite in the data directory, or a throwaway PostgreSQL."""
    if request.param == "sqlite":
        yield []
        return
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres() as postgres:
        # A short lease: the restarted server is a new replica, which takes the batch over once the lease of the
        # killed one expired.
        yield ["--database-url", create_database(postgres, "restart"), "--lease-seconds", "3"]


def test_a_killed_server_resumes_its_batch(tmp_path: Path, database_options: list[str]) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server, url = start_server(data_dir, log, *database_options)
    try:
        with client(url) as api:
            body = {"code": WRITES_A_FILE, "runtimeType": "Python", "outputFileNames": ["out.txt"], **NUMERIC_IO}
            assert api.post("/services/resume/v1", json=body).status_code == 201
            records = [{"hp": float(i), "wt": 0.0} for i in range(ROWS)]
            execution_id = api.post("/api/resume/v1/batch", params={"parallelCount": 2}, json=records).json()[
                "batchExecutionId"
            ]
            deadline = time.monotonic() + 600
            while api.get(f"/api/resume/v1/batch/{execution_id}").json()["completedItemCount"] < 100:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            before_kill = api.get(f"/api/resume/v1/batch/{execution_id}").json()
            assert before_kill["state"] == "inProgress", "the kill must land mid-batch"
        kill_hard(server)

        server, url = start_server(data_dir, log, *database_options)
        with client(url) as api:
            deadline = time.monotonic() + 600
            while (state := api.get(f"/api/resume/v1/batch/{execution_id}").json())["state"] != "complete":
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            results = api.get(f"/api/resume/v1/batch/{execution_id}").json()["batchExecutionResults"]
            assert [r["index"] for r in results] == list(range(ROWS))
            assert all(r["success"] for r in results)
            assert [r["outputParameters"]["answer"] for r in results] == [i * 10 for i in range(ROWS)]
            incremental = api.get(f"/api/resume/v1/batch/{execution_id}", params={"since": "0"}).json()
            assert sorted(r["index"] for r in incremental["batchExecutionResults"]) == list(range(ROWS))
            for index in (0, 573, ROWS - 1):
                file = api.get(f"/api/resume/v1/batch/{execution_id}/{index}/files/out.txt")
                assert file.content == str(float(index)).encode()
    finally:
        if server.poll() is None:
            kill_hard(server)
