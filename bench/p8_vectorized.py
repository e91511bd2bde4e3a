"""P8: the seed model as a vectorized service on 1M rows, against per-row ``Pool.map`` and one local predict.

The service is ``bench.functions.predict_frame`` published with ``vectorized=True`` (one ``model.predict`` per
chunk of 1024 rows). Baselines, in the same run: ``Pool.map`` of the per-row predict (P2's pool) and the per-row
service, each on ``vector_baseline_rows`` rows (a million per-row predicts would take many minutes; throughput is
compared, rows/s), and one ``model.predict(frame)`` of all rows in this process (the physical limit).
"""

from __future__ import annotations

import time

from bench._core import WORKERS, Bench, Check, Figure, Size, Sizes, Versus, model_records, ratio, versus_rate
from bench.functions import predict_frame, predict_record

ID = "P8"
TITLE = "the seed model as a vectorized service, 1M rows"
VECTOR = ("p8vector", "v1")


def run(bench: Bench, sizes: Sizes) -> Figure:
    """The vectorized batch, then the per-row baselines and the local predict, on the same records."""
    import pandas as pd

    rows, few = sizes.vector_rows, sizes.vector_baseline_rows
    records = model_records(rows)
    service = bench.client.publish_service(
        VECTOR[0],
        predict_frame,
        version=VECTOR[1],
        models={"cars_model": bench.model()},
        inputs={"hp": float, "wt": float},
        outputs={"answer": float},
        init="import pandas as pd",  # predict_frame's annotations name pd
        vectorized=True,
        replace=True,
    )
    warm = service.batch(model_records(4 * 1024), parallel_count=WORKERS).start()
    warm.wait(progress=False, poll_interval=0.05)
    status, vector_s = bench.timed_batch(service, records, ID)
    answers = {r.index: r.outputs.get("answer") for r in status.results if r.success}
    if len(answers) != rows:
        raise RuntimeError(f"{rows - len(answers)} rows failed or are missing")

    frame = pd.DataFrame(records)
    started = time.perf_counter()
    local = bench.model().predict(frame).tolist()
    local_s = time.perf_counter() - started
    worst = max(abs(answers[i] - local[i]) for i in range(rows))
    if worst > 1e-9:
        raise RuntimeError(f"the service and the local predict disagree by {worst}")

    pool = bench.pool("model")
    started = time.perf_counter()
    pool.map(predict_record, records[:few])
    pool_s = time.perf_counter() - started
    _, per_row_s = bench.timed_batch(bench.model_service(), records[:few], f"{ID}-per-row")

    vector_rate, pool_rate = ratio(rows, vector_s), ratio(few, pool_s)
    per_row_rate, local_rate = ratio(few, per_row_s), ratio(rows, local_s)
    versus_pool, versus_local = ratio(vector_rate, pool_rate), ratio(vector_rate, local_rate)
    return Figure(
        id=ID,
        title=TITLE,
        value=versus_pool,
        unit="x Pool.map throughput (per-row predict)",
        summary=f"{rows:,} rows in {vector_s:.2f} s = {vector_rate:,.0f} rows/s; one local predict "
        f"{local_rate:,.0f} rows/s; per-row service {per_row_rate:,.0f} rows/s",
        goal=">= 20x Pool.map; report vs one local model.predict (goal >= 0.25x)",
        checks=[
            Check("throughput / Pool.map", versus_pool, ">=", 20, "x"),
            Check("throughput / local predict", versus_local, ">=", 0.25, "x"),
        ],
        baselines={
            "multiprocessing.Pool.map": {
                "seconds": pool_s,
                "rows_per_second": pool_rate,
                "how": f"P2's spawned Pool({WORKERS}), map(predict_record, {few:,} records)",
            },
            "local model.predict": {
                "seconds": local_s,
                "rows_per_second": local_rate,
                "how": f"model.predict(DataFrame of all {rows:,} records) in the client process",
            },
            "per-row service": {
                "seconds": per_row_s,
                "rows_per_second": per_row_rate,
                "how": f"P2's per-row service on {few:,} records",
            },
        },
        ratios={
            "vs Pool.map": versus_pool,
            "vs local predict": versus_local,
            "vs per-row service": ratio(vector_rate, per_row_rate),
        },
        size=Size(table="1,000,000 rows", ran=f"{rows:,} rows (baselines: {few:,} rows, compared in rows/s)"),
        notes=["same answers as the local predict (checked to 1e-9)"],
        details={"max_abs_difference": worst, "rows_per_second": vector_rate},
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P8-pg against P8 of the same run: the vectorized batch's rows/s."""
    return versus_rate(figure, sqlite, "rows_per_second", "P8 of this run: the server on SQLite")
