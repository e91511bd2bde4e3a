"""P9: polls under load: 200 pollers at 2 polls/s each during 5 running batches, against a bare FastAPI route.

The load comes from :mod:`bench.loadgen` in a process of its own (open loop: every poll is due on a fixed
schedule and its latency counts from that due time). In the same run, the same generator with the same plan
first polls the bare FastAPI route of the echo app (``bench.server_proc``: the same framework and uvicorn, in a
thread of the server's process, nothing running), then the server, while 5 batches of a service that sleeps
2 ms a row run (as ``tests/load`` does): each poll is ``GET /api/{name}/{version}/batch/{id}?since=<cursor>&
limit=500`` with a bearer token, token-checked and answered with the rows finished since the poller's cursor.
``P9-pg`` is the same figure on a server whose database is PostgreSQL, compared with this one by
:func:`versus_sqlite`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

import batchscore
from bench._core import WORKERS, Bench, Check, Figure, Size, Sizes, Versus, discard, login_tokens, ratio, run_loadgen

ID = "P9"
TITLE = "poll latency p50 / p99: 200 pollers at 2 polls/s during 5 running batches"
SERVICE = ("benchPoll", "v1")
SLOW_CODE = "import time\ntime.sleep(0.002)\nanswer = x + 1"  # tests/load's 2 ms a row: results keep coming
BATCHES = 5
RATE = 2.0  # polls a second, per poller
TOKENS = 10  # pollers share this many access tokens (each login costs an argon2 hash)


@dataclass(frozen=True)
class Load:
    """How much load P9 offers, for how long."""

    pollers: int
    seconds: float  # of schedule, per side
    grace: float  # answers awaited after the schedule ends
    rows: int  # per batch: enough for the batches to outlast the server side's schedule


FULL_LOAD = Load(pollers=200, seconds=30, grace=15, rows=12_000)
QUICK_LOAD = Load(pollers=50, seconds=3, grace=5, rows=2_000)


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Bare route first (nothing running), then the server with its 5 batches running; same generator and plan."""
    del sizes  # P9's load is its own (FULL_LOAD / QUICK_LOAD)
    load = QUICK_LOAD if bench.quick else FULL_LOAD
    name, version = SERVICE
    service = _service(bench)
    tokens = login_tokens(bench, TOKENS if not bench.quick else 2)
    base = bench.server.echo_url.removesuffix("/echo")
    bare_paths = [f"/api/{name}/{version}/batch/bare{i}" for i in range(BATCHES)]
    bare = _generate(base, bare_paths, tokens, load, bench.server.pid)

    batches = [
        service.batch([{"x": i} for i in range(load.rows)], parallel_count=WORKERS).start() for _ in range(BATCHES)
    ]
    try:
        paths = [f"/api/{name}/{version}/batch/{batch.id}" for batch in batches]
        with bench.maybe_profiled(ID):
            polled = _generate(bench.server.url, paths, tokens, load, bench.server.pid)
        states = _states(bench.server.url, paths, tokens[0])
    finally:
        for batch in batches:
            discard(batch)
    running_after = sum(state not in ("complete", "failed", "canceled") for state in states)

    p50, p99 = polled["p50_ms"], polled["p99_ms"]
    answered_share = ratio(polled["achieved_per_second"], polled["offered_per_second"])
    offered = polled["offered_per_second"]
    return Figure(
        id=ID,
        title=TITLE,
        value=p99,
        unit="ms (p99)",
        summary=(
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; {polled['achieved_per_second']:.0f} of {offered:.0f} polls/s "
            f"answered, {polled['errors']} errors ({load.pollers} pollers, {load.seconds:g} s, {BATCHES} batches, "
            f"{running_after} still running at the end)"
        ),
        goal="<= 20 ms p50 / <= 100 ms p99, no error, every poll answered on time; ratio to the bare route reported",
        checks=[
            Check("poll p50", p50, "<=", 20.0, "ms"),
            Check("poll p99", p99, "<=", 100.0, "ms"),
            Check("errors", polled["errors"], "<=", 0),
            Check("answered / offered", answered_share, ">=", 0.98),
        ],
        baselines={
            "bare FastAPI route": {
                "p50_ms": bare["p50_ms"],
                "p99_ms": bare["p99_ms"],
                "errors": bare["errors"],
                "achieved_per_second": bare["achieved_per_second"],
                "server_cpu_ms_per_answer": bare["server_cpu_ms_per_answer"],
                "how": "GET /api/{name}/{version}/batch/{id} on the echo app (FastAPI + uvicorn in a thread of the "
                "server's process, another port) returning a fixed empty page; same generator, same plan, "
                "measured just before, no batch running",
            }
        },
        ratios={
            "p50 vs bare route": ratio(p50, bare["p50_ms"]),
            "p99 vs bare route": ratio(p99, bare["p99_ms"]),
            "server CPU per answer vs bare route": ratio(
                polled["server_cpu_ms_per_answer"], bare["server_cpu_ms_per_answer"]
            ),
        },
        size=Size(
            table="200 pollers x 2 polls/s, 5 running batches",
            ran=f"{load.pollers} pollers x {RATE:g} polls/s for {load.seconds:g} s per side, {BATCHES} batches of "
            f"{load.rows:,} rows",
            why="" if load == FULL_LOAD else "--quick",
        ),
        notes=[
            "open loop: each poll is due on a fixed schedule (pollers spread evenly over the interval) and its "
            "latency counts from the due time; a poll still unanswered at the grace deadline counts as an error",
            f"generator: bench.loadgen in its own process, hand-written HTTP/1.1 over {polled['event_loop']} "
            f"streams, one keep-alive connection per poller; it used {100 * bare['generator_cpu_share']:.0f} % of "
            f"a core against the bare route, {100 * polled['generator_cpu_share']:.0f} % against the server",
            f"server process CPU per answered poll {polled['server_cpu_ms_per_answer']:.2f} ms, per bare-route answer "
            f"{bare['server_cpu_ms_per_answer']:.2f} ms (that process also hosts the Dask scheduler and nannies, and "
            "during the polls the batch engine)",
            f"{len(tokens)} access tokens shared by the pollers; page size limit=500; the service sleeps 2 ms a row "
            f"(parallelCount {WORKERS}), so results arrive throughout",
        ],
        details={"server": polled, "bare": bare, "batch_states_at_end": states, "load": load.__dict__},
    )


def versus_sqlite(figure: Figure, sqlite: Figure) -> Versus:
    """P9-pg against P9 of the same run: latencies and server CPU per answered poll, PostgreSQL over SQLite."""
    polled, sqlite_polled = figure.details["server"], sqlite.details["server"]
    compared = {"p50": "p50_ms", "p99": "p99_ms", "server CPU per answer": "server_cpu_ms_per_answer"}
    ratios = {f"{name} vs SQLite": ratio(polled[key], sqlite_polled[key]) for name, key in compared.items()}
    line = ", ".join(
        f"{name} {polled[key]:.2f} ms (x{ratios[f'{name} vs SQLite']:.2f} of SQLite's {sqlite_polled[key]:.2f})"
        for name, key in compared.items()
    )
    answered = f"{polled['achieved_per_second']:.0f} (SQLite {sqlite_polled['achieved_per_second']:.0f})"
    return Versus(
        baseline={
            **{key: sqlite_polled[key] for key in (*compared.values(), "errors", "achieved_per_second")},
            "how": "P9 of this run: the same generator and plan, the server on SQLite",
        },
        ratios=ratios,
        line=f"{line}; {answered} of {polled['offered_per_second']:.0f} polls/s answered, "
        f"{polled['errors']} errors (SQLite {sqlite_polled['errors']})",
    )


def _service(bench: Bench) -> batchscore.Service:
    """The 2 ms-a-row service, published (and its workers warmed) once."""
    name, version = SERVICE
    service = bench.client.publish_service(name, SLOW_CODE, version=version, inputs={"x": int}, outputs={"answer": int})
    warm = service.batch([{"x": i} for i in range(2 * WORKERS)], parallel_count=2 * WORKERS).start()
    warm.wait(progress=False, poll_interval=0.05)
    discard(warm)
    return service


def _states(base_url: str, paths: list[str], token: str) -> list[str]:
    """Each batch's state (to show the batches ran through the whole measurement)."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        return [str(http.get(path, params={"limit": 1}).raise_for_status().json()["state"]) for path in paths]


def _generate(base_url: str, paths: list[str], tokens: list[str], load: Load, server_pid: int) -> dict[str, Any]:
    """P9's plan through :func:`bench._core.run_loadgen`."""
    return run_loadgen(
        base_url, paths, tokens, pollers=load.pollers, rate=RATE, seconds=load.seconds, grace=load.grace, pid=server_pid
    )
