"""The benchmarked server, in a process of its own: ``python -m bench.server_proc``.

It starts a Dask ``LocalCluster`` the way the server's embedded one is started (2 one-thread worker processes
under nannies, the server's scheduler settings), then the embedded server on it with
``running_server(scheduler=...)`` (on its SQLite file, or on the database of ``--database-url``), and a bare
FastAPI echo app served by uvicorn in a background thread of this
same process (the P5 baseline). The server gets a process of its own so that psutil measures its memory alone,
without the benchmark client's. It prints one JSON line (URLs, password, scheduler address, pid) and serves until
its standard input closes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
import uvicorn
from distributed import LocalCluster
from fastapi import FastAPI, Request
from sqlalchemy.engine import make_url

from batchscore_server import DASK_CONFIG, running_server


def echo_app() -> FastAPI:
    """The baselines: the same framework and server, routes that do nothing but answer.

    ``POST /echo`` returns its JSON body (P5); ``GET /api/{name}/{version}/batch/{executionId}`` answers a poll
    with a fixed small page that has the same keys as the server's, ignoring its token (P9).
    """
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return await request.json()

    @app.get("/api/{name}/{version}/batch/{executionId}")
    async def poll(name: str, version: str, executionId: str, since: str = "0") -> dict[str, Any]:
        return {
            "batchExecutionId": executionId,
            "name": name,
            "version": version,
            "state": "inProgress",
            "cursor": since,
            "hasMore": False,
            "batchExecutionResults": [],
        }

    return app


@contextmanager
def running_echo() -> Iterator[str]:
    """Serve :func:`echo_app` like ``running_server`` serves the real app: uvicorn in a daemon thread."""
    # Bound here and handed to uvicorn, as running_server does: a port probed free and bound later can be taken.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The same HTTP parser as the real server (see batchscore_server._embedded), so the ratios compare like with like.
    server = uvicorn.Server(uvicorn.Config(echo_app(), host="127.0.0.1", port=port, log_level="warning", http="h11"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="echo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the echo server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/echo"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _dialect(database_url: str | None) -> str:
    """``sqlite`` or ``postgresql`` (a URL's dialect, without its driver)."""
    return "sqlite" if database_url is None else make_url(database_url).get_backend_name()


def main() -> int:
    """Start cluster, server and echo app; announce them; serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url", help="the server's database (a SQLAlchemy URL); default: SQLite in its data directory"
    )
    args = parser.parse_args()
    # The scheduler settings the server applies to its own LocalCluster (it applies them only when it creates
    # the cluster, so a cluster started for it must get them first: see README, "An external cluster").
    dask.config.set(DASK_CONFIG)
    started = time.monotonic()
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        running_server(
            workers=args.workers, scheduler=cluster.scheduler_address, database_url=args.database_url
        ) as server,
        running_echo() as echo_url,
    ):
        announce = {
            "url": server.url,
            "admin_password": server.admin_password,
            "scheduler": cluster.scheduler_address,
            "echo_url": echo_url,
            "pid": os.getpid(),
            "database": _dialect(args.database_url),
            "data_dir": str(server.settings.data_dir),
            "database_url": args.database_url,
            "startup_seconds": time.monotonic() - started,
        }
        print(json.dumps(announce), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
