"""Server settings: one frozen object built by the CLI or the embedded-server context manager."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 12800  # ML Server's web-node port, so old scripts' endpoints keep working


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start.

    Attributes:
        data_dir: Holds the SQLite database, the JWT secret, snapshots and artifacts. Nothing that matters lives
            only in memory.
        workers: Dask worker processes of the embedded LocalCluster (one thread each), and the size of the warm
            process pool that serves request-response consumes.
        scheduler: Address of an existing Dask scheduler; None starts an embedded LocalCluster. Workers of a
            remote cluster must see ``data_dir`` at the same path (artifacts are written there).
        max_parallel_count: Server cap on a batch's parallelCount (ML Server's MaxNumberOfThreadsPerBatchExecution).
        max_body_bytes: Larger request bodies are refused with 413.
        access_token_seconds: Life of an access token.
        refresh_token_seconds: Life of a refresh token (ML Server: 14 days).
        consume_timeout_seconds: How long a consume may run when its service sets no ``consumeTimeout``; its
            process is then killed and the answer is a failed execution.
        worker_memory_bytes: Memory cap of each worker process, None for none. A consume-pool process gets it as
            its address-space limit (RLIMIT_AS), so an allocation beyond it fails in the service's code.
        read_timeout_seconds: A client that sends nothing for this long while the server waits for its request
            (line, headers or body) is disconnected: stalled connections are not held forever.
        max_connections: Open connections beyond this are answered 503 (uvicorn's ``limit_concurrency``).

    """

    data_dir: Path
    workers: int = 2
    scheduler: str | None = None
    max_parallel_count: int = 100
    max_body_bytes: int = 256 * 1024 * 1024
    access_token_seconds: int = 3600
    refresh_token_seconds: int = 14 * 24 * 3600
    consume_timeout_seconds: float = 600.0
    worker_memory_bytes: int | None = None
    read_timeout_seconds: float = 30.0
    max_connections: int = 4096

    @property
    def database_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "batchscore.sqlite3"

    @property
    def artifacts_dir(self) -> Path:
        """Where each batch row's files are stored: ``<artifacts>/<execution id>/<index>/<file>``."""
        return self.data_dir / "artifacts"

    @property
    def objects_dir(self) -> Path:
        """Session workspaces, snapshots and the objects of published services."""
        return self.data_dir / "objects"

    @property
    def scratch_dir(self) -> Path:
        """Fresh working directories of running executions."""
        return self.data_dir / "scratch"


def default_workers() -> int:
    """One worker per core, at least one."""
    return max(1, os.cpu_count() or 1)
