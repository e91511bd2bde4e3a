"""An external Dask cluster for the tests: a `dask scheduler` process and `dask worker` processes.

Started with the options the README's "Scaling out" gives them (scheduler settings in the environment, workers
with one thread each and ``--preload batchscore_server._worker``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# The scheduler settings the engine relies on, given to an external scheduler the documented way.
SCHEDULER_ENV = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
}
START_TIMEOUT_S = 120
# The `dask` command of this interpreter's environment: the README's scaling-out commands are `dask scheduler` and
# `dask worker`.
DASK = str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_cluster(folder: Path, worker_processes: int = 1, workers_each: int = 2) -> Iterator[str]:
    """Start a scheduler and ``worker_processes`` worker commands (``workers_each`` one-thread workers each).

    The scheduler binds a port it picks itself and writes its address to a scheduler file, which the workers and
    this function read: no port is probed. Everything is stopped on exit. Yields the scheduler's address.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, **SCHEDULER_ENV}
    processes: list[subprocess.Popen[bytes]] = []

    def start(*command: str) -> None:
        with (folder / "dask.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    [DASK, *command],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (folder / "dask.log").read_text()
            time.sleep(0.1)
        for _ in range(worker_processes):
            start(
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--nworkers",
                str(workers_each),
                "--no-dashboard",
                "--preload",
                "batchscore_server._worker",
            )
        yield str(json.loads(scheduler_file.read_text())["address"])
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
