"""kill -9 of the server mid-batch, then a restart on the same data dir: every row ends with exactly one result."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import NUMERIC_IO

PASSWORD = "restart-test-password"
ROWS = 1000
WRITES_A_FILE = "import time\ntime.sleep(0.01)\nopen('out.txt', 'w').write(str(hp))\nanswer = hp * 10\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BATCHSCORE_ADMIN_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        "-c",
        "from batchscore.cli import main; main()",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError("the server did not start:\n" + log.read_text(errors="replace"))


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the server and its Dask workers, all at once
    process.wait(timeout=30)


def client(port: int) -> httpx.Client:
    token = httpx.post(f"http://127.0.0.1:{port}/login", json={"username": "admin", "password": PASSWORD}).json()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=60
    )


def test_a_killed_server_resumes_its_batch(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    port = free_port()
    server = start_server(data_dir, port, log)
    try:
        with client(port) as api:
            body = {"code": WRITES_A_FILE, "runtimeType": "Python", "outputFileNames": ["out.txt"], **NUMERIC_IO}
            assert api.post("/services/resume/v1", json=body).status_code == 201
            records = [{"hp": float(i), "wt": 0.0} for i in range(ROWS)]
            execution_id = api.post("/api/resume/v1/batch", params={"parallelCount": 2}, json=records).json()[
                "batchExecutionId"
            ]
            deadline = time.monotonic() + 60
            while api.get(f"/api/resume/v1/batch/{execution_id}").json()["completedItemCount"] < 100:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            before_kill = api.get(f"/api/resume/v1/batch/{execution_id}").json()
            assert before_kill["state"] == "inProgress", "the kill must land mid-batch"
        kill_hard(server)

        server = start_server(data_dir, port, log)
        with client(port) as api:
            deadline = time.monotonic() + 120
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
