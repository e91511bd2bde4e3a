"""A big body before authentication: refused by its size, before it is parsed, at no memory cost.

A 64 MiB ``[{},{},...]`` body on ``POST /login`` (no token needed) took the server from 171 MB to 1.75 GB while
it parsed it, as every JSON route accepted bodies up to the batch limit (256 MiB). The server runs in this
process (a thread), so this process's resident memory is the server's.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from batchscore_server import RunningServer

MIB = 1024 * 1024
# Parsing this body costs some 25 times its size; refusing it costs nothing that shows.
ALLOWED_GROWTH = 100 * MIB


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """This process's highest resident set size while the block runs (sampled; the parse lasted seconds)."""
    process = psutil.Process()
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)


def test_a_64_mib_login_body_is_a_413_without_growing_the_server(server: RunningServer) -> None:
    body = b"[" + b"{}," * (64 * MIB // 3 - 1) + b"{}]"
    parts = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    baseline = psutil.Process().memory_info().rss
    started = time.monotonic()
    try:
        with peak_rss() as peak:
            # Keep-alive: the server answers at once from Content-Length and reads the rest of the body away,
            # so the whole body is sent before the answer is read.
            connection.request("POST", "/login", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
    finally:
        connection.close()
    seconds = time.monotonic() - started

    growth = peak[0] - baseline
    shown = f"{response.status} {answer[:200]!r}; memory grew {growth / MIB:.0f} MB in {seconds:.2f} s"
    print(shown)  # the before/after numbers of the closing note (pytest -s)
    assert response.status == 413, shown
    assert response.getheader("content-type", "").startswith("application/json"), shown
    assert json.loads(answer)["field"] == "body", shown
    assert growth < ALLOWED_GROWTH, shown
