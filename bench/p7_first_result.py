"""P7: time from ``start()`` to the first result visible in the client, for a 1M-row batch.

Measured on P6's large batch (run alone, the batch is left running at its first result). The clock starts when
``Batch.start()`` is called (the SDK has already checked the records), so it includes uploading the records and
the server storing them; the client then looks for a first result every 50 ms with
``iter_results(poll_interval=0.05)``.
"""

from __future__ import annotations

import math

from bench._core import Bench, Check, Figure, Size, Sizes
from bench.p6_memory import big_size

ID = "P7"
TITLE = "time from start to the first visible result, 1M rows"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Reuse P6's large batch; alone, start one and stop reading at its first result."""
    rows, size = big_size(bench, sizes)
    big = bench.big_batch(rows, read_all=False, profile_first=ID)
    first = big.first_result_seconds if big.first_result_seconds is not None else math.nan
    return Figure(
        id=ID,
        title=TITLE,
        value=first,
        unit="s",
        summary=f"first result {first:.2f} s after start() (the start request itself took {big.start_seconds:.2f} s)",
        goal="<= 1 s",
        checks=[Check("start -> first result", first, "<=", 1.0, "s")],
        size=Size(table="1,000,000 rows", ran=size.ran, why=size.why),
        notes=[
            "first result looked for every 50 ms; the clock includes the upload and the server storing the rows",
            "--profile profiles the server's process tree from start() to the first result",
        ],
        details={"start_request_seconds": big.start_seconds, "after_start_seconds": first - big.start_seconds},
    )
