"""P6: peak resident memory of the server and of its workers during a 1M-row batch, and at 100k.

Sampled with psutil every 0.2 s: the server process (which also hosts the Dask scheduler and nannies, as with the
server's own embedded cluster) and, summed, its child processes (two Dask workers, two consume-pool processes,
multiprocessing's resource tracker). The 100k batch runs right before the large one (read with ``iter_results``).
"Flat in rows" is checked as the large batch's server peak within 1.25x of the 100k one.
"""

from __future__ import annotations

from typing import Any

from bench._core import Bench, Check, Figure, Size, Sizes, ratio

ID = "P6"
TITLE = "peak RSS of server and workers during a 1M-row batch, and at 100k"
SERVER_LIMIT_MB = 600
FLAT = 1.25
NICE_SIZES = (1_000_000, 500_000, 200_000, 100_000, 50_000, 20_000, 10_000)


def big_size(bench: Bench, sizes: Sizes) -> tuple[int, Size]:
    """The large batch's size: as asked, unless the throughput measured so far says it would not fit the budget."""
    wanted = sizes.big_rows
    table = f"{wanted:,} rows" if not bench.quick else "1,000,000 rows"
    measured = [run for run in bench.trivial_runs.values() if run.rows >= 1000]
    if not measured:
        return wanted, Size(table=table, ran=f"{wanted:,} rows", why="--quick" if bench.quick else "")
    best = max(measured, key=lambda run: run.rows)
    projected = wanted / best.rows_per_second
    if projected <= sizes.big_budget_seconds:
        why = "--quick: tiny sizes" if bench.quick else ""
        return wanted, Size(table=table, ran=f"{wanted:,} rows", why=why)
    fitting = [n for n in NICE_SIZES if n < wanted and n / best.rows_per_second <= sizes.big_budget_seconds]
    rows = fitting[0] if fitting else min(NICE_SIZES)
    why = (
        f"{wanted:,} rows would take about {projected:.0f} s at the {best.rows_per_second:,.0f} rows/s measured at "
        f"{best.rows:,} rows in this run, over the {sizes.big_budget_seconds:.0f} s budget of one measurement"
    )
    return rows, Size(table=table, ran=f"{rows:,} rows", why=why)


def _growth(rss: dict[str, Any], process: str) -> float:
    """How much a process grew while a batch ran (its peak over its size just before)."""
    return float(rss[f"{process}_peak_mb"] - rss[f"{process}_before_mb"])


def run(bench: Bench, sizes: Sizes) -> Figure:
    """A 100k batch, then the large one right after it, each with the memory sampler running."""
    small_rows = sizes.sweep[-1]
    # Run again right before the large batch, so both peaks start from the same server: the figures between
    # them (P2 loads a model into the workers, P3 makes 20k consumes) grow the processes on their own.
    small = bench.trivial_batch(small_rows, fresh=True)
    rows, size = big_size(bench, sizes)
    big = bench.big_batch(rows, read_all=True, deadline=2 * sizes.big_budget_seconds, profile=ID)
    why = size.why
    if not big.complete:
        why = (f"{why}; " if why else "") + (
            f"reading stopped after {big.seconds:.0f} s (twice the {sizes.big_budget_seconds:.0f} s budget) with "
            f"{big.rows_read:,} of {rows:,} results: the peaks are those of that part of the batch"
        )
    server_small = small.rss["server_peak_mb"]
    server_big = big.rss["server_peak_mb"]
    growth = ratio(server_big, server_small)
    return Figure(
        id=ID,
        title=TITLE,
        value=server_big,
        unit=f"MB server peak at {rows:,} rows",
        summary=f"server peak {server_big:.0f} MB at {rows:,} rows, {server_small:.0f} MB at {small_rows:,} "
        f"(grew {_growth(big.rss, 'server'):.0f} / {_growth(small.rss, 'server'):.0f} MB during each); workers "
        f"(sum) {big.rss['workers_sum_peak_mb']:.0f} / {small.rss['workers_sum_peak_mb']:.0f} MB",
        goal=f"<= {SERVER_LIMIT_MB} MB server, flat in rows (large/small <= {FLAT}x)",
        checks=[
            Check(f"server peak at {rows:,} rows", server_big, "<=", SERVER_LIMIT_MB, "MB"),
            Check(f"server peak at {small_rows:,} rows", server_small, "<=", SERVER_LIMIT_MB, "MB"),
            Check("server peak large / small", growth, "<=", FLAT, "x"),
        ],
        ratios={
            "server large / small": growth,
            "workers large / small": ratio(big.rss["workers_sum_peak_mb"], small.rss["workers_sum_peak_mb"]),
        },
        size=Size(table="1,000,000 and 100,000 rows", ran=f"{rows:,} and {small_rows:,} rows", why=why),
        notes=[
            f"the {small_rows:,}-row batch runs again right before the large one, so both start from the same server "
            "(the figures run between P1 and P6 grow the processes on their own)",
            "the server process also hosts the Dask scheduler and nannies (as the embedded server does); workers = "
            "the sum over its child processes (2 Dask workers, 2 consume-pool processes, the resource tracker)",
            "RSS is never returned to the OS once grown, so the large batch runs after every other figure",
        ],
        details={
            f"{small_rows}": small.rss,
            f"{rows}": big.rss,
            "large_batch_seconds": big.seconds,
            "large_batch_rows_per_second": ratio(big.rows_read, big.seconds),
            "large_batch_complete": big.complete,
            "large_batch_rows_read": big.rows_read,
        },
    )
