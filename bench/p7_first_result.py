"""P7b: time from the start request's 202 to the first result visible in the client, for a 1M-row batch.

Measured on P6's large batch (run alone, the batch is left running at its first result; P7a is the start request
of the same run). After ``Batch.start()`` returns (the 202 has arrived), the client looks for a first result every
50 ms with ``iter_results(poll_interval=0.05)``, so the figure has up to 50 ms of polling granularity in it.
"""

from __future__ import annotations

import math

from bench._core import Bench, Check, Figure, Size, Sizes, Versus, versus_rate
from bench.p6_memory import big_size

ID = "P7b"
TITLE = "time from the start request's 202 to the first visible result, 1M rows"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Reuse P6's large batch; alone, start one and stop reading at its first result."""
    rows, size = big_size(bench, sizes)
    big = bench.big_batch(rows, read_all=False, profile_first="P7")
    first = big.first_result_seconds if big.first_result_seconds is not None else math.nan
    after = first - big.start_seconds
    return Figure(
        id=ID,
        title=TITLE,
        value=after,
        unit="s",
        summary=f"first result {after:.3f} s after the 202 ({first:.2f} s after start() was called)",
        goal="<= 0.25 s",
        checks=[Check("202 -> first result", after, "<=", 0.25, "s")],
        size=Size(table="1,000,000 rows", ran=size.ran, why=size.why),
        notes=[
            "first result looked for every 50 ms after start() returned",
            "--profile profiles the server's process tree from start() to the first result (as P7)",
        ],
        details={"after_start_seconds": after, "start_request_seconds": big.start_seconds, "first_seconds": first},
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P7b-pg against P7b of the same run."""
    return versus_rate(figure, sqlite, "after_start_seconds", "P7b of this run: the server on SQLite")
