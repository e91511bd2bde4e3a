"""P7a: the start request of a 1M-row batch, in rows a second (upload, validation and storage of every row).

Measured on P6's large batch, run alone (P7b is the first result of the same run): the clock runs while
``Batch.start()`` sends the records (the SDK has checked them already) and the server checks and stores every row,
until the 202 arrives.
"""

from __future__ import annotations

from bench._core import Bench, Check, Figure, Size, Sizes, Versus, ratio, versus_rate
from bench.p6_memory import big_size

ID = "P7a"
TITLE = "the start request of a 1M-row batch (upload, validation, storage)"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Reuse P6's large batch; alone, time its start request."""
    rows, size = big_size(bench, sizes)
    big = bench.big_batch(rows, read_all=False, profile_first="P7")
    rate = ratio(rows, big.start_seconds)
    return Figure(
        id=ID,
        title=TITLE,
        value=rate,
        unit="rows/s",
        summary=f"{rows:,} rows started in {big.start_seconds:.2f} s",
        goal=">= 1,000,000 rows/s",
        checks=[Check("start request rows/s", rate, ">=", 1_000_000, "rows/s")],
        size=Size(table="1,000,000 rows", ran=size.ran, why=size.why),
        notes=["from Batch.start() to its 202: the SDK streams NDJSON, the server checks and stores as it arrives"],
        details={"rows_per_second": rate, "start_request_seconds": big.start_seconds},
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P7a-pg against P7a of the same run."""
    return versus_rate(figure, sqlite, "rows_per_second", "P7a of this run: the server on SQLite")
