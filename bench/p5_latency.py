"""P5: consume latency of a warm service, p50 and p99, against a bare FastAPI echo route.

No route may be added to the server, so the baseline is a bare FastAPI app with one ``POST /echo`` route that
returns its JSON body, served by uvicorn in a background thread of the server's own process on another port (the
same setup as the embedded server). Both are called with the same raw ``httpx.Client`` (keep-alive), one
consume and one echo alternately, so that noise from the shared cores falls on both alike.

Then the same under 50 concurrent consuming clients: :mod:`bench.loadgen` (open loop, each call due on a fixed
schedule and its latency counted from that due time) runs 50 keep-alive clients consuming at ``CONCURRENT_RATE``
calls a second each, first against the echo route, then against the service; p99 of the consumes ≤ 20 ms.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from bench._core import TRIVIAL, Bench, Check, Figure, Size, Sizes, login_tokens, percentile, ratio, run_loadgen

ID = "P5"
TITLE = "consume latency p50 / p99, warm service"
WARMUP = 50
CONCURRENT_CLIENTS = 50
CONCURRENT_RATE = 4.0  # consumes a second per client: 200 a second offered in all
CONCURRENT_SECONDS = 20.0


def run(bench: Bench, sizes: Sizes) -> Figure:
    """Alternate ``latency_calls`` consumes with as many echo calls; report percentiles in milliseconds."""
    calls = sizes.latency_calls
    bench.trivial_service()
    name, version = TRIVIAL
    with httpx.Client(timeout=30) as http:
        credentials = {"username": "admin", "password": bench.server.admin_password}
        login = http.post(f"{bench.server.url}/login", json=credentials)
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        consume_url = f"{bench.server.url}/api/{name}/{version}"

        def consume(x: int) -> None:
            answer = http.post(consume_url, json={"x": x}, headers=headers)
            answer.raise_for_status()
            if answer.json()["outputParameters"]["answer"] != x + 1:
                raise RuntimeError("a consume returned a wrong answer")

        def echo(x: int) -> None:
            answer = http.post(bench.server.echo_url, json={"x": x}, headers=headers)
            answer.raise_for_status()
            if answer.json()["x"] != x:
                raise RuntimeError("the echo returned a wrong answer")

        for i in range(WARMUP):
            consume(i)
            echo(i)
        consume_ms: list[float] = []
        echo_ms: list[float] = []
        with bench.maybe_profiled(ID):
            for i in range(calls):
                started = time.perf_counter()
                consume(i)
                middle = time.perf_counter()
                echo(i)
                ended = time.perf_counter()
                consume_ms.append(1000 * (middle - started))
                echo_ms.append(1000 * (ended - middle))
    p50, p99 = percentile(consume_ms, 50), percentile(consume_ms, 99)
    echo_p50, echo_p99 = percentile(echo_ms, 50), percentile(echo_ms, 99)
    concurrent = _concurrent(bench)
    busy, busy_echo = concurrent["service"], concurrent["echo"]
    return Figure(
        id=ID,
        title=TITLE,
        value=p50,
        unit="ms (p50)",
        summary=f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {calls:,} calls",
        goal="<= 5 ms p50 / <= 20 ms p99; ratio to the echo route reported",
        checks=[
            Check("consume p50", p50, "<=", 5.0, "ms"),
            Check("consume p99", p99, "<=", 20.0, "ms"),
            Check(f"consume p99, {CONCURRENT_CLIENTS} concurrent clients", busy["p99_ms"], "<=", 20.0, "ms"),
            Check(f"errors, {CONCURRENT_CLIENTS} concurrent clients", busy["errors"], "<=", 0),
        ],
        baselines={
            "FastAPI echo route": {
                "p50_ms": echo_p50,
                "p99_ms": echo_p99,
                "how": "bare FastAPI POST /echo (returns its JSON body) served by uvicorn in a thread of the server's "
                "process, on another port: no route was added to the server",
            }
        },
        ratios={
            "p50 vs echo": ratio(p50, echo_p50),
            "p99 vs echo": ratio(p99, echo_p99),
            "concurrent p99 vs echo": ratio(busy["p99_ms"], busy_echo["p99_ms"]),
        },
        size=Size(table="2,000 calls", ran=f"{calls:,} calls of each, alternated, after {WARMUP} warm-up calls"),
        notes=[
            "raw httpx.Client with a bearer token for both (the SDK's own overhead is not in either number)",
            f"under load: {CONCURRENT_CLIENTS} clients x {CONCURRENT_RATE:g} consumes/s, open loop (bench.loadgen): "
            f"p50 {busy['p50_ms']:.1f} ms, p99 {busy['p99_ms']:.1f} ms, {busy['errors']} errors; the echo route "
            f"under the same load p50 {busy_echo['p50_ms']:.1f} ms, p99 {busy_echo['p99_ms']:.1f} ms",
        ],
        details={
            "consume_ms": {"p50": p50, "p90": percentile(consume_ms, 90), "p99": p99, "max": max(consume_ms)},
            "echo_ms": {"p50": echo_p50, "p90": percentile(echo_ms, 90), "p99": echo_p99, "max": max(echo_ms)},
            "concurrent": concurrent,
        },
    )


def _concurrent(bench: Bench) -> dict[str, dict[str, Any]]:
    """The echo route, then the service, each under ``CONCURRENT_CLIENTS`` open-loop consuming clients."""
    name, version = TRIVIAL
    quick = bench.quick
    clients = 10 if quick else CONCURRENT_CLIENTS
    seconds = 2.0 if quick else CONCURRENT_SECONDS
    tokens = login_tokens(bench, 2 if quick else 5)
    body = json.dumps({"x": 1})

    def load(base_url: str, path: str) -> dict[str, Any]:
        return run_loadgen(
            base_url,
            [path],
            tokens,
            pollers=clients,
            rate=CONCURRENT_RATE,
            seconds=seconds,
            grace=10.0,
            pid=bench.server.pid,
            body=body,
        )

    echo_base, echo_path = bench.server.echo_url.rsplit("/", 1)
    echo = load(echo_base, f"/{echo_path}")
    with bench.maybe_profiled(f"{ID}-concurrent"):
        service = load(bench.server.url, f"/api/{name}/{version}")
    return {"echo": echo, "service": service}
