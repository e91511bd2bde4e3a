"""P10: fair share: user B's small batch on an idle server, then while user A's large batch runs.

Both users run the same service, which sleeps 3 ms a row (so A's 200,000 rows would take minutes on 2 workers,
far longer than B's 100). B's batch is timed from ``start()`` to its final status (polling every 50 ms), a few
times on the idle server, then the same number of times while A's batch runs (started by the admin, another
user, and timed once it has results); A is then canceled and both are deleted. The figure is the ratio of the
medians, busy / idle: the issue's goal is about 2x (B shares the 2 workers with A instead of having both).
"""

from __future__ import annotations

import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import batchscore
from batchscore_server import Role, add_user
from bench._core import WORKERS, Bench, Check, Figure, Size, Sizes, discard, ratio

ID = "P10"
TITLE = "fair share: a small batch of user B, idle vs while user A's large batch runs"
SLOW = ("benchSlow", "v1")
SLOW_CODE = "import time\ntime.sleep(0.003)\nanswer = x + 1\n"
ROW_SECONDS = 0.003
USER_B = "benchUserB"
A_RESULTS_BEFORE = 200  # A's results seen before B is timed: A's chunks are then sized from its measured rate
POLL_SECONDS = 0.05


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Time B's small batch idle, then while A's large batch runs; A is canceled afterwards."""
    slow = _slow_service(bench)
    b_client = _user_b_client(bench)
    try:
        b_service = b_client.get_service(*SLOW)
        idle = [_time_small(b_service, sizes.fair_small_rows) for _ in range(sizes.fair_repeats)]
        big = slow.batch([{"x": i} for i in range(sizes.fair_big_rows)], parallel_count=WORKERS).start()
        try:
            deadline = time.monotonic() + 300
            while big.results().completed_item_count < A_RESULTS_BEFORE and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            busy = [_time_small(b_service, sizes.fair_small_rows) for _ in range(sizes.fair_repeats)]
            a_status = big.results(show_partial_results=False)
        finally:
            big.cancel()
            discard(big)
    finally:
        b_client.close()
    return figure(idle, busy, sizes, a_done=a_status.completed_item_count, a_state=str(a_status.state))


def figure(idle: list[float], busy: list[float], sizes: Sizes, *, a_done: int, a_state: str) -> Figure:
    """The figure from the measured seconds of B's batches (idle and busy) and A's state after the last one."""
    idle_s, busy_s = statistics.median(idle), statistics.median(busy)
    slower = ratio(busy_s, idle_s)
    notes = [
        f"service: sleeps {ROW_SECONDS * 1000:g} ms a row, then answer = x + 1; both users' batches "
        f"parallelCount {WORKERS} on the {WORKERS} workers; B's batch timed from start() to its final status, "
        f"polled every {POLL_SECONDS * 1000:g} ms; median of {len(idle)} runs a side",
        f"A's batch had {a_done:,} of {sizes.fair_big_rows:,} rows done and was {a_state} after B's last run "
        "(then canceled)",
        "fairness is per replica: each replica's engine shares out the worker threads among the batches it drives",
    ]
    if a_state != "inProgress":
        notes.append("A's batch was no longer running during every B run: the busy side is not a fair measure")
    return Figure(
        id=ID,
        title=TITLE,
        value=slower,
        unit="x idle",
        summary=f"{sizes.fair_small_rows} rows in {busy_s:.2f} s while A's batch runs, {idle_s:.2f} s idle",
        goal="<= 2x the idle time",
        checks=[Check("busy / idle", slower, "<=", 2.0, "x")],
        baselines={
            "idle server": {
                "seconds": idle_s,
                "rows_per_second": ratio(sizes.fair_small_rows, idle_s),
                "how": "the same small batch of user B with nothing else running",
            }
        },
        ratios={"vs idle": slower},
        size=Size(
            table="100 rows of B during 200,000 rows of A",
            ran=f"{sizes.fair_small_rows} rows of B during {sizes.fair_big_rows:,} rows of A",
        ),
        notes=notes,
        details={"idle_seconds": idle, "busy_seconds": busy, "a_rows_done": a_done, "a_state": a_state},
    )


def _slow_service(bench: Bench) -> batchscore.Service:
    name, version = SLOW
    service = bench.client.publish_service(name, SLOW_CODE, version=version, inputs={"x": int}, outputs={"answer": int})
    warm = service.batch([{"x": i} for i in range(2 * WORKERS)], parallel_count=WORKERS).start()
    warm.wait(progress=False, poll_interval=POLL_SECONDS)
    discard(warm)
    return service


def _user_b_client(bench: Bench) -> batchscore.Client:
    """A second user (a Reader may start batches), added to the server's database."""
    password = secrets.token_urlsafe(16)
    add_user(Path(bench.server.data_dir), USER_B, password, Role.READER, bench.server.database_url)
    return batchscore.Client(bench.server.url, username=USER_B, password=password)


def _time_small(service: batchscore.Service, rows: int) -> float:
    started = time.perf_counter()
    batch = service.batch([{"x": i} for i in range(rows)], parallel_count=WORKERS).start()
    status: Any = batch.wait(progress=False, poll_interval=POLL_SECONDS)
    seconds = time.perf_counter() - started
    if status.state != "complete" or status.completed_item_count != rows:
        raise RuntimeError(f"B's batch ended {status.state} with {status.completed_item_count} of {rows} rows")
    discard(batch)
    return seconds
