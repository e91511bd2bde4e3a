"""An open-loop HTTP load generator, in a process of its own: ``python -m bench.loadgen`` (P9 polls, P5 consumes).

It reads one JSON object on standard input (see :class:`Plan`), runs ``pollers`` keep-alive connections that
each send ``GET <path>?since=<cursor>&limit=<limit>`` (or, with a ``body``, ``POST <path>`` of that JSON body)
``rate`` times a second **on a fixed schedule**, and prints one JSON object (see :func:`summarize`) on standard
output.

Open loop, as wrk2 does it: request ``k`` of poller ``i`` is due at ``t0 + phase_i + k / rate`` whatever became of
the earlier ones, and its latency is measured from that due time, not from when it could be sent. A poller whose
connection is still busy with an earlier answer sends the late request the moment the connection is free, so a
slow server is charged with the queueing it causes (no coordinated omission). A request due before the end of the
run that has no answer by the grace deadline is counted as unanswered, with the time it waited as a lower bound
of its latency.

HTTP is written and parsed by hand over asyncio streams (on uvloop when it is installed): a request is one
preformatted write, an answer is a status line, a ``Content-Length`` (or chunked) body and a search for the
cursor in the body's first bytes. That costs a few tens of microseconds per poll, so that one process on a shared
core keeps a schedule of several hundred polls a second and is not the bottleneck (its own CPU time is reported).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_CURSOR = re.compile(rb'"cursor":"(\d+)"')
_HEAD_END = b"\r\n\r\n"
_ERRORS_KEPT = 10  # examples of errors reported; all are counted


@dataclass(frozen=True)
class Plan:
    """What to run: read as JSON from standard input."""

    base_url: str  # http://host:port
    paths: list[str]  # poller i polls paths[i % len(paths)]
    tokens: list[str]  # poller i sends tokens[i % len(tokens)] as its bearer token
    pollers: int
    rate: float  # polls a second, per poller
    seconds: float  # requests are due during this long
    grace: float  # after it, answers are awaited this much longer
    limit: int = 500  # the page size asked for
    body: str | None = None  # a JSON body: POST it to the path instead of polling (P5's concurrent consumes)


@dataclass
class _Tally:
    """What every poller adds to."""

    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    unanswered: list[float] = field(default_factory=list)  # seconds waited by requests left without answer
    answered_in_window: int = 0  # answers that arrived before the end of the schedule
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    reconnects: int = 0
    bytes_read: int = 0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_examples) < _ERRORS_KEPT:
            self.error_examples.append(text)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: its status code and body."""
    head = await reader.readuntil(_HEAD_END)
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(max(length, 0))
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # the empty trailer
    return status, b"".join(parts)


async def _poller(number: int, plan: Plan, t0: float, tally: _Tally) -> None:
    """Poll one path on schedule over one keep-alive connection, reconnecting after an error."""
    url = urlsplit(plan.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = plan.paths[number % len(plan.paths)]
    authorization = f"Authorization: Bearer {plan.tokens[number % len(plan.tokens)]}\r\n"
    if plan.body is None:
        request_head = f"GET {path}?limit={plan.limit}&since="
        request_tail = f" HTTP/1.1\r\nHost: {url.netloc}\r\n{authorization}\r\n"
    else:
        # A POST has no cursor: the head is the whole request line and headers, the tail its body.
        body = plan.body.encode()
        request_head = (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{authorization}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        request_tail = plan.body
    interval = 1 / plan.rate
    # Pollers are spread evenly over one interval, so that the offered load is smooth rather than in bursts.
    first = t0 + interval * number / plan.pollers
    due_count = max(0, math.ceil((t0 + plan.seconds - first) / interval))
    end = t0 + plan.seconds
    cursor = "0"
    reader, writer = await asyncio.open_connection(host, port)
    k = 0
    try:
        while k < due_count:
            due = first + k * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                writer.write(f"{request_head}{cursor if plan.body is None else ''}{request_tail}".encode())
                status, body = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
                tally.error(f"{type(error).__name__}: {error}")
                writer.close()
                tally.reconnects += 1
                reader, writer = await asyncio.open_connection(host, port)
                k += 1
                continue
            now = time.perf_counter()
            tally.latencies.append(now - due)
            tally.answered_in_window += now <= end
            tally.bytes_read += len(body)
            k += 1
            if status != 200:
                tally.error(f"HTTP {status}: {body[:200].decode(errors='replace')}")
                continue
            found = _CURSOR.search(body, 0, 4096)
            if found:
                cursor = found.group(1).decode()
    except asyncio.CancelledError:
        # The grace deadline passed: every request that was due and has no answer waited at least this long.
        now = time.perf_counter()
        tally.unanswered.extend(now - (first + j * interval) for j in range(k, due_count))
        raise
    finally:
        writer.close()


async def _run(plan: Plan) -> dict[str, Any]:
    tally = _Tally()
    loop = asyncio.get_running_loop()
    # Connections are opened before the schedule starts (a poller keeps its connection alive between polls).
    # Times are time.perf_counter()'s: uvloop's loop.time() counts whole milliseconds.
    t0 = time.perf_counter() + 0.2 + plan.pollers * 0.002
    tasks = [asyncio.create_task(_poller(number, plan, t0, tally)) for number in range(plan.pollers)]
    cpu_before = time.process_time()
    _, pending = await asyncio.wait(tasks, timeout=t0 + plan.seconds + plan.grace - time.perf_counter())
    for task in pending:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):  # e.g. the first connection was refused
            tally.error(f"{type(outcome).__name__}: {outcome}")
    wall = time.perf_counter() - t0
    summary = summarize(plan, tally, wall, time.process_time() - cpu_before)
    summary["event_loop"] = type(loop).__module__.split(".")[0]  # "uvloop" or "asyncio"
    return summary


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return 1000 * ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summarize(plan: Plan, tally: _Tally, wall: float, cpu: float) -> dict[str, Any]:
    """Latency percentiles (unanswered requests counted at the time they waited), errors, rates, own CPU."""
    ordered = sorted(tally.latencies + tally.unanswered)
    offered = plan.pollers * plan.rate
    return {
        "pollers": plan.pollers,
        "rate_per_poller": plan.rate,
        "seconds": plan.seconds,
        "offered_per_second": offered,
        "requests_due": len(ordered),
        "answered": len(tally.latencies),
        "unanswered": len(tally.unanswered),
        "achieved_per_second": tally.answered_in_window / plan.seconds,
        "p50_ms": _percentile_ms(ordered, 50),
        "p90_ms": _percentile_ms(ordered, 90),
        "p99_ms": _percentile_ms(ordered, 99),
        "max_ms": _percentile_ms(ordered, 100),
        "errors": tally.errors + len(tally.unanswered),
        "error_examples": tally.error_examples
        + ([f"{len(tally.unanswered)} requests unanswered at the grace deadline"] if tally.unanswered else []),
        "reconnects": tally.reconnects,
        "bytes_read": tally.bytes_read,
        "generator_cpu_seconds": cpu,
        "generator_cpu_share": cpu / wall if wall > 0 else None,
    }


def main() -> int:
    """Read the plan from stdin, run it, print the summary as one JSON line."""
    plan = Plan(**json.loads(sys.stdin.read()))
    try:
        import uvloop  # the cheaper loop, when uvicorn's standard extra brought it
    except ImportError:
        summary = asyncio.run(_run(plan))
    else:
        summary = uvloop.run(_run(plan))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
