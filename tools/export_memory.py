"""Memory of the streamed export at 1M rows: ``python -m tools.export_memory [--rows N]``.

Runs the benchmark server in its own process (``bench.server_proc``), publishes ``answer = x``, starts one batch
of N rows (NDJSON body), waits for it, then streams its export three times while sampling resident memory: raw
NDJSON and raw CSV with httpx (server RSS growth), and ``Batch.export`` to a file with the SDK (server and client
RSS growth). Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

import batchscore
from bench._core import RssSampler, server_process

MB = 1024 * 1024


class SelfSampler:
    """This process's peak RSS while a block runs."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.before = self._process.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.1)

    def __enter__(self) -> SelfSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder, server_process(Path(folder) / "server.log") as info:
        client = batchscore.Client(info.url, username="admin", password=info.admin_password, timeout=600)
        service = client.publish_service("exportmem", "answer = x", version="v1", inputs={"x": int}, outputs={"answer": int})
        started = time.perf_counter()
        batch = service.batch([{"x": i} for i in range(rows)], parallel_count=64).start()
        batch.wait(progress=False, poll_interval=2)
        ran = time.perf_counter() - started
        token = client.tokens.access_token
        url = f"{info.url}/api/exportmem/v1/batch/{batch.id}/results"
        figures: dict[str, object] = {"rows": rows, "batch_seconds": round(ran, 1)}
        for label, accept in (("ndjson", "application/x-ndjson"), ("csv", "text/csv")):
            size = 0
            started = time.perf_counter()
            with RssSampler(info.pid) as server, httpx.stream(
                "GET", url, headers={"Authorization": f"Bearer {token}", "Accept": accept}, timeout=600
            ) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            figures[f"raw_{label}"] = {
                "server_growth_mb": round((server.server_peak - server.server_before) / MB, 1),
                "server_before_mb": round(server.server_before / MB, 1),
                "mb_sent": round(size / MB, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
        for label in ("ndjson", "csv"):
            target = Path(folder) / f"export.{label}"
            started = time.perf_counter()
            with RssSampler(info.pid) as server, SelfSampler() as me:
                status = batch.export(target, format=label)  # type: ignore[arg-type]
            figures[f"sdk_export_{label}"] = {
                "server_growth_mb": round((server.server_peak - server.server_before) / MB, 1),
                "client_growth_mb": round((me.peak - me.before) / MB, 1),
                "client_before_mb": round(me.before / MB, 1),
                "file_mb": round(target.stat().st_size / MB, 1),
                "records": status.completed_item_count,
                "seconds": round(time.perf_counter() - started, 1),
            }
            target.unlink()
        started = time.perf_counter()
        with RssSampler(info.pid) as server, SelfSampler() as me:
            count = sum(1 for _ in batch.iter_results())
        figures["sdk_iter_results"] = {
            "server_growth_mb": round((server.server_peak - server.server_before) / MB, 1),
            "client_growth_mb": round((me.peak - me.before) / MB, 1),
            "records": count,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(figures, indent=1))
        client.close()


if __name__ == "__main__":
    main()
