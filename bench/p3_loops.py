"""P3: one batch against request-response loops over the same rows.

The same records of the trivial service (``answer = x + 1``, so that the figure measures what each way of
calling costs rather than the function): one batch (submit -> every result), a sequential loop of
``Service.consume``, and an asyncio loop of ``AsyncService.consume`` with 10 calls in flight.
"""

from __future__ import annotations

import asyncio
import time

import batchscore
from bench._core import TRIVIAL, Bench, Check, Figure, Size, Sizes, Versus, ratio, versus_rate

ID = "P3"
TITLE = "batch vs request-response loops on the same 10k rows"
CONCURRENCY = 10


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Batch, then the sequential loop, then the asyncio loop."""
    rows = sizes.loop_rows
    records = [{"x": i} for i in range(rows)]
    service = bench.trivial_service()
    status, batch_s = bench.timed_batch(service, records, ID)
    if status.completed_item_count != rows or status.failed_item_count:
        raise RuntimeError("the batch did not complete every row")

    started = time.perf_counter()
    for record in records:
        if service.consume(**record).outputs["answer"] != record["x"] + 1:
            raise RuntimeError("a consume returned a wrong answer")
    sequential_s = time.perf_counter() - started

    asyncio_s = asyncio.run(_asyncio_loop(bench, records))
    vs_sequential = ratio(sequential_s, batch_s)
    vs_asyncio = ratio(asyncio_s, batch_s)
    return Figure(
        id=ID,
        title=TITLE,
        value=vs_sequential,
        unit="x a sequential loop",
        summary=f"{rows:,} rows as one batch in {batch_s:.2f} s = {rows / batch_s:,.0f} rows/s",
        goal=">= 50x sequential, >= 10x asyncio",
        checks=[
            Check("batch speed / sequential loop", vs_sequential, ">=", 50, "x"),
            Check("batch speed / asyncio loop", vs_asyncio, ">=", 10, "x"),
        ],
        baselines={
            "sequential loop": {
                "seconds": sequential_s,
                "rows_per_second": ratio(rows, sequential_s),
                "how": "for record in records: Service.consume(**record)",
            },
            "asyncio loop": {
                "seconds": asyncio_s,
                "rows_per_second": ratio(rows, asyncio_s),
                "how": f"AsyncClient, {CONCURRENCY} coroutines consuming from one iterator (10 calls in flight)",
            },
        },
        ratios={"vs sequential": vs_sequential, "vs asyncio": vs_asyncio},
        size=Size(table="10,000 rows", ran=f"{rows:,} rows"),
        notes=["trivial function on every side: the figure compares the ways of calling, not the function"],
        details={"rows_per_second": ratio(rows, batch_s)},
    )


async def _asyncio_loop(bench: Bench, records: list[dict[str, int]]) -> float:
    async with batchscore.AsyncClient(
        bench.server.url, username="admin", password=bench.server.admin_password
    ) as client:
        service = await client.get_service(*TRIVIAL)
        await service.consume(**records[0])  # log in and warm the connection before timing
        pending = iter(records)

        async def consumer() -> None:
            for record in pending:
                if (await service.consume(**record)).outputs["answer"] != record["x"] + 1:
                    raise RuntimeError("a consume returned a wrong answer")

        started = time.perf_counter()
        await asyncio.gather(*(consumer() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P3-pg against P3 of the same run: the batch's rows/s."""
    return versus_rate(figure, sqlite, "rows_per_second", "P3 of this run: the server on SQLite")
