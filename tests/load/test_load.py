"""Load: 200 concurrent pollers and 5 concurrent batches for 60 s against one server: no error, no lost row.

The p50/p99 poll latency is printed (and written to tests' output) as a benchmark figure, never asserted: this
machine has two noisy cores.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from batchscore_server import RunningServer, running_server
from tests.e2e.conftest import NUMERIC_IO, login

POLLERS = 200
BATCHES = 5
ROWS_PER_BATCH = 3_000
DURATION_S = 60.0
SERVICE = {"code": "import time\ntime.sleep(0.002)\nanswer = hp * 2 + wt", "runtimeType": "Python", **NUMERIC_IO}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server(workers=2) as running:
        yield running


async def _poll_forever(
    client: httpx.AsyncClient, batches: list[str], stop_at: float, latencies: list[float], errors: list[str]
) -> None:
    cursors = dict.fromkeys(batches, "0")
    rng = random.Random()
    while time.monotonic() < stop_at:
        execution_id = rng.choice(batches)
        began = time.perf_counter()
        try:
            response = await client.get(
                f"/api/load/v1/batch/{execution_id}", params={"since": cursors[execution_id], "limit": 500}
            )
        except httpx.HTTPError as error:
            errors.append(f"{type(error).__name__}: {error}")
            continue
        latencies.append(time.perf_counter() - began)
        if response.status_code != 200:
            errors.append(f"{response.status_code}: {response.text[:200]}")
            continue
        cursors[execution_id] = response.json()["cursor"]
        await asyncio.sleep(rng.uniform(0.05, 0.25))


async def _run_load(server: RunningServer) -> tuple[list[str], list[float], list[str]]:
    token = login(server)["access_token"]
    limits = httpx.Limits(max_connections=POLLERS + 10, max_keepalive_connections=POLLERS + 10)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as client:
        assert (await client.post("/services/load/v1", json=SERVICE)).status_code == 201
        batches = []
        for number in range(BATCHES):
            records = [{"hp": float(i), "wt": float(number)} for i in range(ROWS_PER_BATCH)]
            started = await client.post("/api/load/v1/batch", params={"parallelCount": 2}, json=records)
            assert started.status_code == 202, started.text
            batches.append(started.json()["batchExecutionId"])
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + DURATION_S
        await asyncio.gather(*(_poll_forever(client, batches, stop_at, latencies, errors) for _ in range(POLLERS)))
        return batches, latencies, errors


def test_pollers_and_batches_under_load(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    batches, latencies, errors = asyncio.run(_run_load(server))
    assert not errors, errors[:10]
    token = login(server)["access_token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as api:
        deadline = time.monotonic() + 600
        for number, execution_id in enumerate(batches):
            while (status := api.get(f"/api/load/v1/batch/{execution_id}", params={"limit": 1}).json())["state"] != (
                "complete"
            ):
                assert time.monotonic() < deadline, status
                time.sleep(0.5)
            results = api.get(f"/api/load/v1/batch/{execution_id}").json()["batchExecutionResults"]
            assert [r["index"] for r in results] == list(range(ROWS_PER_BATCH))  # no row lost, none twice
            assert all(r["outputParameters"]["answer"] == r["index"] * 2 + number for r in results)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    with capsys.disabled():
        print(
            f"\n[load] {POLLERS} pollers x {DURATION_S:.0f} s, {BATCHES} batches x {ROWS_PER_BATCH} rows: "
            f"{len(latencies)} polls, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {len(errors)}"
        )
