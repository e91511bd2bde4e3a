"""Memory of the streamed export at 1M rows: ``python -m tools.export_memory [--rows N]``.

Runs one batch of ``answer = x`` over N rows (NDJSON body) on a server in a process of its own, then, each time
on a freshly started server over the same data directory (a process's RSS never shrinks, so one export would
hide the next one's growth), streams the export while sampling that server's memory: raw NDJSON and raw CSV with
httpx, and ``Batch.export`` to a file with the SDK, itself run in a fresh client process that samples its own
memory. Prints one JSON object.

Server memory is reported as RSS and as its anonymous part (RSS minus file-backed pages): the read pool maps the
SQLite file (``PRAGMA mmap_size``, 256 MB), so reading every row of a large batch grows RSS by the mapped pages
of the file, page cache the kernel reclaims, up to that cap, whatever the batch's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

MB = 1024 * 1024
PASSWORD = "export-memory-pw"
SERVICE = "exportmem"


class Sampler:
    """Peak RSS and peak anonymous memory (RSS - shared) of one process while a block runs."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.before = self._read()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> tuple[int, int]:
        info = self._process.memory_info()
        return info.rss, info.rss - info.shared

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, anon = self._read()
            self.peak = (max(self.peak[0], rss), max(self.peak[1], anon))
            self._stop.wait(self._interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict[str, float]:
        """Before and growth, in MB."""
        return {
            "rss_before_mb": round(self.before[0] / MB, 1),
            "rss_growth_mb": round((self.peak[0] - self.before[0]) / MB, 1),
            "anon_before_mb": round(self.before[1] / MB, 1),
            "anon_growth_mb": round((self.peak[1] - self.before[1]) / MB, 1),
        }


def host(data_dir: str, workers: int) -> None:
    """A server over ``data_dir``: prints its URL and pid, serves until stdin closes."""
    from batchscore_server import running_server

    with running_server(Path(data_dir), workers=workers, admin_password=PASSWORD) as server:
        print(json.dumps({"url": server.url, "pid": psutil.Process().pid}), flush=True)
        sys.stdin.read()


class Host:
    """``host`` in a subprocess, for one block."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        command = [sys.executable, "-m", "tools.export_memory", "host", str(data_dir), str(workers)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.url, self.pid = info["url"], info["pid"]

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *_: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=120)


def token(url: str) -> str:
    """An admin access token from the server at ``url``."""
    answer = httpx.post(f"{url}/login", json={"username": "admin", "password": PASSWORD}, timeout=120)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def client_export(url: str, access_token: str, execution_id: str, kind: str, target: str) -> None:
    """In a fresh process: ``Batch.export`` (or ``iter_results``, ``to_frame``), printing its memory figures."""
    import pandas  # noqa: F401  # imported before the sampler: to_frame's import is not the export's memory

    import batchscore

    with batchscore.Client(url, token=access_token, timeout=600) as client:
        batch = client.get_service(SERVICE, "v1").get_batch(execution_id)
        with Sampler(psutil.Process().pid) as me:
            started = time.perf_counter()
            if kind == "iter_results":
                records = sum(1 for _ in batch.iter_results())
            elif kind == "to_frame":
                records = len(batch.to_frame())
            else:
                records = batch.export(target, format=kind).completed_item_count  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
    print(json.dumps({**me.figures(), "records": records, "seconds": round(seconds, 1)}))


def measure(rows: int) -> dict[str, Any]:
    """Run the batch, then each export on a fresh server; the figures."""
    figures: dict[str, Any] = {"rows": rows}
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        with Host(data_dir, 2) as server:
            api = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token(server.url)}"}, timeout=600
            )
            definition = {
                "code": "answer = x",
                "runtimeType": "Python",
                "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
                "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
            }
            api.post(f"/services/{SERVICE}/v1", json=definition).raise_for_status()
            body = "".join(f'{{"x":{i}}}\n' for i in range(rows)).encode()
            started = time.perf_counter()
            answer = api.post(
                f"/api/{SERVICE}/v1/batch", content=body, headers={"Content-Type": "application/x-ndjson"}
            )
            execution_id = answer.json()["batchExecutionId"]
            while api.get(f"/api/{SERVICE}/v1/batch/{execution_id}", params={"limit": 1}).json()["state"] != "complete":
                time.sleep(2)
            figures["batch_seconds"] = round(time.perf_counter() - started, 1)
        for kind, accept in (("ndjson", "application/x-ndjson"), ("csv", "text/csv")):
            with Host(data_dir, 1) as server:
                headers = {"Authorization": f"Bearer {token(server.url)}", "Accept": accept}
                url = f"{server.url}/api/{SERVICE}/v1/batch/{execution_id}/results"
                size, started = 0, time.perf_counter()
                with Sampler(server.pid) as sampler, httpx.stream("GET", url, headers=headers, timeout=600) as stream:
                    for chunk in stream.iter_bytes():
                        size += len(chunk)
                seconds = time.perf_counter() - started
                figures[f"raw_{kind}"] = {
                    **sampler.figures(),
                    "mb_sent": round(size / MB, 1),
                    "seconds": round(seconds, 1),
                }
        for kind in ("ndjson", "csv", "iter_results", "to_frame"):
            with Host(data_dir, 1) as server:
                target = str(Path(folder) / f"export.{kind}")
                # Logged in before the sampler (argon2 takes 64 MB while it hashes): the client gets the token.
                access = token(server.url)
                command = [sys.executable, "-m", "tools.export_memory", "client", server.url, access, execution_id]
                command += [kind, target]
                with Sampler(server.pid) as sampler:
                    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                figures[f"sdk_{kind}"] = {
                    "client": json.loads(output.strip().splitlines()[-1]),
                    "server": sampler.figures(),
                }
                if Path(target).exists():
                    figures[f"sdk_{kind}"]["file_mb"] = round(Path(target).stat().st_size / MB, 1)
    return figures


def main() -> None:
    """The command line (``host`` and ``client`` are the subprocesses' own modes)."""
    if sys.argv[1:2] == ["host"]:
        host(sys.argv[2], int(sys.argv[3]))
        return
    if sys.argv[1:2] == ["client"]:
        client_export(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    print(json.dumps(measure(parser.parse_args().rows), indent=1))


if __name__ == "__main__":
    main()
