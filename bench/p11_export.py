"""P11: memory of the streamed results export of a large batch (1M rows), on the server and on the client.

A batch of the trivial service runs to the end (read with ``iter_results``, which follows the export), then
``Batch.export`` downloads it twice, as NDJSON and as CSV, into a file, while psutil samples the server process
(every 0.2 s) and this process (the client, every 0.1 s). The figure is the server's growth during the export;
both sides must stay flat: a growth far below the size of what was sent.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench._core import MB, Bench, Check, Figure, RssSampler, Sizes, discard
from bench.p6_memory import big_size

ID = "P11"
TITLE = "RSS growth of server and client while a 1M-row batch's results are exported"
GROWTH_LIMIT_MB = 100  # either side, during one export (a 1M-row export sends over 100 MB)


class _ClientSampler:
    """The peak resident memory of the benchmark's own process (the client) while a block runs."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.before = self._process.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="client-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.1)

    def __enter__(self) -> _ClientSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _export(bench: Bench, batch: Any, folder: Path, kind: str) -> dict[str, Any]:
    target = folder / f"export.{kind}"
    started = time.perf_counter()
    with RssSampler(bench.server.pid) as server, _ClientSampler() as client:
        status = batch.export(target, format=kind)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    return {
        "server_growth_mb": round((server.server_peak - server.server_before) / MB, 1),
        "server_before_mb": round(server.server_before / MB, 1),
        "client_growth_mb": round((client.peak - client.before) / MB, 1),
        "client_before_mb": round(client.before / MB, 1),
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
    server_growth = max(ndjson["server_growth_mb"], csv["server_growth_mb"])
    client_growth = max(ndjson["client_growth_mb"], csv["client_growth_mb"])
    return Figure(
        id=ID,
        title=TITLE,
        value=server_growth,
        unit=f"MB server growth exporting {rows:,} rows",
        summary=f"server grew {ndjson['server_growth_mb']:.0f} / {csv['server_growth_mb']:.0f} MB and the client "
        f"{ndjson['client_growth_mb']:.0f} / {csv['client_growth_mb']:.0f} MB while exporting {rows:,} rows as "
        f"NDJSON ({ndjson['file_mb']:.0f} MB, {ndjson['seconds']:.0f} s) / CSV ({csv['file_mb']:.0f} MB, "
        f"{csv['seconds']:.0f} s)",
        goal=f"<= {GROWTH_LIMIT_MB} MB growth on each side, whatever the batch's size",
        checks=[
            Check("server growth during the export", server_growth, "<=", GROWTH_LIMIT_MB, "MB"),
            Check("client growth during the export", client_growth, "<=", GROWTH_LIMIT_MB, "MB"),
        ],
        size=size,
        notes=[
            "the batch is read to its end with iter_results (which follows the export in completion order) first",
            "growth = the peak during the export over the size just before it; the file is written as it arrives",
        ],
        details={"ndjson": ndjson, "csv": csv, "rows": rows, "batch_seconds": round(batch_seconds, 1)},
    )
