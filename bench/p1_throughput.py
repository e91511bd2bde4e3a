"""P1: throughput of a trivial function (``answer = x + 1``), submit -> every result in the client.

Baselines on the same rows, back to back at each batch size: ``dask.bag.from_sequence(records).map(f).compute()``
on the server's own Dask cluster (a separate ``distributed.Client`` of its scheduler), and
``multiprocessing.Pool(2).map`` (the limit: no server, no storage, no network). The figure is the largest size;
the smaller ones draw the throughput curve. ``P1-pg`` is the same figure on a server whose database is PostgreSQL,
compared with this one by :func:`versus_sqlite`.
"""

from __future__ import annotations

from bench._core import Bench, Check, Figure, Size, Sizes, Versus, ratio

ID = "P1"
TITLE = "100k rows, trivial function: submit -> every result in the client"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Measure every size of the sweep: batchscore, then dask.bag, then Pool.map."""
    bench.trivial_service()
    bench.run_dask_bag(100, record=False)  # warm: the first compute pays for shipping the function
    points = []
    for rows in sizes.sweep:
        last = rows == sizes.sweep[-1]
        batch = bench.trivial_batch(rows, profile=ID if last else None)
        bag = bench.run_dask_bag(rows)
        pool = bench.run_pool_map(rows)
        points.append({"rows": rows, "batchscore_s": batch.seconds, "dask_bag_s": bag, "pool_map_s": pool})
    rows = sizes.sweep[-1]
    batch = bench.trivial_runs[rows]
    bag_s, pool_s = points[-1]["dask_bag_s"], points[-1]["pool_map_s"]
    vs_bag = ratio(bag_s, batch.seconds)
    vs_pool = ratio(pool_s, batch.seconds)
    return Figure(
        id=ID,
        title=TITLE,
        value=vs_bag,
        unit="x dask.bag throughput",
        summary=f"{rows:,} rows in {batch.seconds:.2f} s = {batch.rows_per_second:,.0f} rows/s "
        f"(start request {batch.start_seconds:.2f} s)",
        goal=">= 10x dask.bag; ratio to Pool.map reported",
        checks=[Check("throughput / dask.bag", vs_bag, ">=", 10.0, "x")],
        baselines={
            "dask.bag": {
                "seconds": bag_s,
                "rows_per_second": ratio(rows, bag_s),
                "how": "dask.bag.from_sequence(records).map(plus_one).compute() (default partitioning) on the "
                "server's cluster (its scheduler settings: worker-saturation 1.0, allowed-failures 0), through a "
                "second distributed.Client",
            },
            "multiprocessing.Pool.map": {
                "seconds": pool_s,
                "rows_per_second": ratio(rows, pool_s),
                "how": "Pool(2).map(plus_one, records) (default chunksize), pool already started",
            },
        },
        ratios={"vs dask.bag": vs_bag, "vs Pool.map": vs_pool},
        size=Size(table="100,000 rows", ran=f"{rows:,} rows (curve: {', '.join(f'{n:,}' for n in sizes.sweep)})"),
        notes=[
            "batchscore: SDK Service.batch(records).start() then Batch.wait(progress=False) with its default polling "
            "(the server's Retry-After: 1 s), parallelCount 10 (capped by the 2 workers); time includes the SDK's "
            "record checks and the upload",
        ],
        details={
            "points": points,
            "seconds": batch.seconds,
            "rows_per_second": batch.rows_per_second,
            "start_seconds": batch.start_seconds,
            "polls": batch.polls,
        },
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P1-pg against P1 of the same run: the same batch's throughput on PostgreSQL over that on SQLite."""
    rate, sqlite_rate = figure.details["rows_per_second"], sqlite.details["rows_per_second"]
    share = ratio(rate, sqlite_rate)
    return Versus(
        baseline={
            "seconds": sqlite.details["seconds"],
            "rows_per_second": sqlite_rate,
            "how": "P1 of this run: the same batch, the server on SQLite",
        },
        ratios={"vs SQLite": share},
        line=f"{rate:,.0f} rows/s, x{share:.2f} of SQLite ({sqlite_rate:,.0f} rows/s)",
    )
