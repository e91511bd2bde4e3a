"""P11: memory of the streamed results export of a large batch (1M rows), on the server and on the client.

A batch of the trivial service runs to the end (read with ``iter_results``, which follows the export), then
``Batch.export`` downloads it twice, as NDJSON and as CSV, into a file, while psutil samples the server process
and this process (the client) every 0.1 s. The figure is the server's growth of anonymous memory (RSS minus
file-backed pages) during the export; both sides must stay flat. RSS is reported too: on SQLite it also grows by
the pages of the database file the read pool maps (``PRAGMA mmap_size``, at most 256 MB whatever the batch's
size), page cache the kernel takes back, not the server's own memory.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench._core import MB, Bench, Check, Figure, Sizes, discard
from bench.p6_memory import big_size

ID = "P11"
TITLE = "RSS growth of server and client while a 1M-row batch's results are exported"
GROWTH_LIMIT_MB = 100  # either side, during one export (a 1M-row export sends over 100 MB)


class _Sampler:
    """Peak RSS and peak anonymous memory (RSS minus file-backed pages) of one process while a block runs."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.before = self._read()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-rss", daemon=True)

    def _read(self) -> tuple[int, int]:
        info = self._process.memory_info()
        return info.rss, info.rss - getattr(info, "shared", 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, anon = self._read()
            self.peak = (max(self.peak[0], rss), max(self.peak[1], anon))
            self._stop.wait(0.1)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self) -> dict[str, float]:
        """Growth of RSS and of anonymous memory, and RSS before, in MB."""
        return {
            "rss_before_mb": round(self.before[0] / MB, 1),
            "rss_growth_mb": round((self.peak[0] - self.before[0]) / MB, 1),
            "anon_growth_mb": round((self.peak[1] - self.before[1]) / MB, 1),
        }


def _export(bench: Bench, batch: Any, folder: Path, kind: str) -> dict[str, Any]:
    target = folder / f"export.{kind}"
    started = time.perf_counter()
    with _Sampler(bench.server.pid) as server, _Sampler(psutil.Process().pid) as client:
        status = batch.export(target, format=kind)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    return {
        "server": server.growth(),
        "client": client.growth(),
        "file_mb": round(size / MB, 1),
        "records": status.completed_item_count,
        "seconds": round(seconds, 2),
        "mb_per_second": round(size / MB / seconds, 1) if seconds > 0 else None,
    }


def run(bench: Bench, sizes: Sizes) -> Figure:
    """One large batch, then its export as NDJSON and as CSV with the memory samplers running."""
    rows, size = big_size(bench, sizes)
    service = bench.trivial_service()
    batch = service.batch([{"x": i} for i in range(rows)]).start()
    started = time.perf_counter()
    seen = sum(1 for _ in batch.iter_results())
    batch_seconds = time.perf_counter() - started
    if seen != rows:
        raise RuntimeError(f"iter_results gave {seen} of {rows} results")
    try:
        with tempfile.TemporaryDirectory() as folder:
            ndjson = _export(bench, batch, Path(folder), "ndjson")
            csv = _export(bench, batch, Path(folder), "csv")
    finally:
        discard(batch)
    server_growth = max(ndjson["server"]["anon_growth_mb"], csv["server"]["anon_growth_mb"])
    client_growth = max(ndjson["client"]["anon_growth_mb"], csv["client"]["anon_growth_mb"])
    server_rss = max(ndjson["server"]["rss_growth_mb"], csv["server"]["rss_growth_mb"])
    return Figure(
        id=ID,
        title=TITLE,
        value=server_growth,
        unit=f"MB server growth (anonymous memory) exporting {rows:,} rows",
        summary=f"server grew {server_growth:.0f} MB (RSS {server_rss:.0f} MB with the mapped database file) and "
        f"the client {client_growth:.0f} MB while exporting {rows:,} rows as NDJSON ({ndjson['file_mb']:.0f} MB, "
        f"{ndjson['seconds']:.0f} s) and CSV ({csv['file_mb']:.0f} MB, {csv['seconds']:.0f} s)",
        goal=f"<= {GROWTH_LIMIT_MB} MB growth on each side, whatever the batch's size",
        checks=[
            Check("server anonymous memory growth during the export", server_growth, "<=", GROWTH_LIMIT_MB, "MB"),
            Check("client anonymous memory growth during the export", client_growth, "<=", GROWTH_LIMIT_MB, "MB"),
        ],
        size=size,
        notes=[
            "the batch is read to its end with iter_results (which follows the export in completion order) first",
            "growth = the peak during the export over the size just before it; the file is written as it arrives",
            "anonymous memory = RSS minus file-backed pages: SQLite's mapped database file (page cache, at most "
            "256 MB) is in the server's RSS growth but not in the figure",
        ],
        details={"ndjson": ndjson, "csv": csv, "rows": rows, "batch_seconds": round(batch_seconds, 1)},
    )
