"""P2: the seed model's per-row predict (mtcars ``glm(am ~ hp + wt)``), 10k rows, against ``Pool.map``.

The service is published with the SDK from ``bench.functions.manual_transmission`` and the fitted model as a
snapshot object; the baseline maps the same function over the same records with a spawned ``Pool`` of as many
processes as the server has workers, each of which loaded the same pickled model once. Both sides are warm.
"""

from __future__ import annotations

import time

from bench._core import WORKERS, Bench, Check, Figure, Size, Sizes, Versus, model_records, ratio, versus_rate
from bench.functions import predict_record

ID = "P2"
TITLE = "the seed model's per-row predict, 10k rows"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Batch of ``model_rows`` records, then the same records through ``Pool.map``."""
    rows = sizes.model_rows
    records = model_records(rows)
    service = bench.model_service()
    pool = bench.pool("model")
    status, batch_s = bench.timed_batch(service, records, ID)
    started = time.perf_counter()
    expected = pool.map(predict_record, records)
    pool_s = time.perf_counter() - started
    answers = {r.index: r.outputs.get("answer") for r in status.results if r.success}
    if len(answers) != rows:
        raise RuntimeError(f"{rows - len(answers)} rows failed or are missing")
    worst = max(abs(answers[i] - expected[i]["answer"]) for i in range(rows))
    if worst > 1e-9:
        raise RuntimeError(f"the service and the pool disagree by {worst}")
    value = ratio(pool_s, batch_s)
    return Figure(
        id=ID,
        title=TITLE,
        value=value,
        unit="x Pool.map throughput",
        summary=f"{rows:,} rows in {batch_s:.2f} s = {rows / batch_s:,.0f} rows/s",
        goal=">= 0.9x Pool.map",
        checks=[Check("throughput / Pool.map", value, ">=", 0.9, "x")],
        baselines={
            "multiprocessing.Pool.map": {
                "seconds": pool_s,
                "rows_per_second": ratio(rows, pool_s),
                "how": f"spawned Pool({WORKERS}) with the model loaded once per process, map(predict_record, "
                "records), default chunksize",
            }
        },
        ratios={"vs Pool.map": value},
        size=Size(table="10,000 rows", ran=f"{rows:,} rows"),
        notes=["same answers on both sides (checked to 1e-9)"],
        details={"max_abs_difference": worst, "rows_per_second": ratio(rows, batch_s)},
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P2-pg against P2 of the same run: the same batch's rows/s."""
    return versus_rate(figure, sqlite, "rows_per_second", "P2 of this run: the server on SQLite")
