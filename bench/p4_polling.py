"""P4: bytes that ``Batch.wait()`` downloads while polling a 100k-row batch, against the bytes of the results.

Measured on P1's batch (the same run): the SDK client sends through a transport that counts response body bytes;
"the final results" is one ``GET`` of the finished batch with every result (``batch.results()``).
"""

from __future__ import annotations

from bench._core import Bench, Check, Figure, Size, Sizes, ratio

ID = "P4"
TITLE = "bytes moved by wait() polling a 100k-row batch"


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Reuse (or run) P1's largest batch and compare its polled bytes with one fetch of the results."""
    rows = sizes.sweep[-1]
    batch = bench.trivial_batch(rows, profile=None)
    value = ratio(batch.polled_bytes, batch.final_bytes)
    return Figure(
        id=ID,
        title=TITLE,
        value=value,
        unit="x the final results' bytes",
        summary=f"wait() read {batch.polled_bytes:,} bytes in {batch.polls} polls",
        goal="<= 1.5x",
        checks=[Check("polled bytes / result bytes", value, "<=", 1.5, "x")],
        baselines={
            "final results": {
                "bytes": batch.final_bytes,
                "how": "one GET of the finished batch with every result (Batch.results())",
            }
        },
        ratios={"vs final results": value},
        size=Size(table="100,000 rows", ran=f"{rows:,} rows (P1's batch)"),
        notes=["response bodies only (headers excluded on both sides); the server does not compress"],
        details={"polls": batch.polls, "polled_bytes": batch.polled_bytes, "final_bytes": batch.final_bytes},
    )
