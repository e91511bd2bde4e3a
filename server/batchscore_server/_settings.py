"""Server settings: one frozen object built by the CLI or the embedded-server context manager."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 12800  # ML Server's web-node port, so old scripts' endpoints keep working
DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600.0  # OpenAI keeps batch files 30 days, Anthropic results 29
# A retention is given as seconds or with a unit; "never" (or 0) keeps finished batches for ever.
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_RETENTION_SECONDS = 60  # as the contract's least expiresAfter: the sweep runs once a minute
MAX_RETENTION_SECONDS = 100 * 366 * 86400


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
        max_body_bytes: Larger request bodies are refused with 413: the limit of the bodies that carry records or
            objects (a batch, a workspace object) and the ceiling of every smaller limit below.
        max_small_body_bytes: Limit of the bodies that hold a few short fields: log in, renew a token, create a
            session or a snapshot. Small, as logging in needs no token: a big body must not cost memory first.
        max_service_body_bytes: Limit of a publish or PATCH body (code and initCode may each be 1 MiB of text,
            larger once JSON-escaped).
        max_consume_body_bytes: Limit of a consume's body (one record).
        max_result_bytes: A row or consume whose ``outputParameters`` are longer as JSON fails (16 MiB).
        max_console_bytes: Console output kept of a row or consume; the rest is dropped, with a note (1 MiB).
        max_output_file_bytes: A row or consume whose declared output file is larger fails, naming the file
            (64 MiB; a consume's answer carries its files base64-encoded in its JSON).
        access_token_seconds: Life of an access token.
        refresh_token_seconds: Life of a refresh token (ML Server: 14 days).
        worker_memory_bytes: Memory limit of each Dask worker process of the embedded LocalCluster (and of each
            consume-pool process); a worker over 95 % of it is killed and replaced, failing its row. ``None``:
            Dask's default, the machine's memory divided by the number of workers.
        reader_max_queued_rows: Quota of a Reader: rows pending or running in its unfinished batches (0: none).
        reader_max_stored_bytes: Quota of a Reader: bytes of the batch records it keeps stored (0: none).
        contributor_max_queued_rows: The same for a Contributor (Owners have no quota).
        contributor_max_stored_bytes: The same for a Contributor, counting its workspace objects and snapshots too.
        consume_timeout_seconds: How long a consume may run when its service sets no ``consumeTimeout``; its
            process is then killed and the answer is a failed execution.
        read_timeout_seconds: A client that sends nothing for this long while the server waits for its request
            (line, headers or body) is disconnected: stalled connections are not held forever.
        max_connections: Open connections beyond this are answered 503 (uvicorn's ``limit_concurrency``).
        database_url: A SQLAlchemy URL of the database (``postgresql://...`` for several replicas on one
            database); None: SQLite in the data directory.
        artifact_dir: Where batch row files, published services' objects, snapshots and session workspaces live;
            None: inside the data directory. Replicas share one, at the same path on every replica and Dask worker.
        lease_seconds: How long a replica's lease on the batches it drives lasts unless renewed; another replica
            takes a batch over this long after its replica died. Renewed every ``lease_seconds / 5``.
        retention_seconds: How long a finished batch's records, results and files are kept when it was started
            without ``expiresAfter`` (30 days); None keeps them for ever. Its summary stays after.

    """

    data_dir: Path
    workers: int = 2
    scheduler: str | None = None
    max_parallel_count: int = 100
    max_body_bytes: int = 256 * 1024 * 1024
    max_small_body_bytes: int = 16 * 1024
    max_service_body_bytes: int = 16 * 1024 * 1024
    max_consume_body_bytes: int = 16 * 1024 * 1024
    max_result_bytes: int = 16 * 1024 * 1024
    max_console_bytes: int = 1024 * 1024
    max_output_file_bytes: int = 64 * 1024 * 1024
    access_token_seconds: int = 3600
    refresh_token_seconds: int = 14 * 24 * 3600
    worker_memory_bytes: int | None = None
    reader_max_queued_rows: int = 100_000
    reader_max_stored_bytes: int = 1024**3
    contributor_max_queued_rows: int = 0
    contributor_max_stored_bytes: int = 0
    consume_timeout_seconds: float = 600.0
    read_timeout_seconds: float = 30.0
    max_connections: int = 4096
    database_url: str | None = None
    artifact_dir: Path | None = None
    lease_seconds: float = 10.0
    retention_seconds: float | None = DEFAULT_RETENTION_SECONDS

    @property
    def database_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "batchscore.sqlite3"

    @property
    def database(self) -> Path | str:
        """What :func:`batchscore_server._db.create_engine` opens: the URL, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def shared_database(self) -> bool:
        """Whether other replicas may use the database (anything but SQLite)."""
        return self.database_url is not None and not self.database_url.startswith("sqlite")

    @property
    def artifacts_dir(self) -> Path:
        """Where each batch row's files are stored: ``<artifacts>/<execution id>/<index>/<file>``."""
        return self.data_dir / "artifacts" if self.artifact_dir is None else self.artifact_dir / "batches"

    @property
    def objects_dir(self) -> Path:
        """Session workspaces, snapshots and the objects of published services."""
        return (self.data_dir if self.artifact_dir is None else self.artifact_dir) / "objects"

    @property
    def scratch_dir(self) -> Path:
        """Fresh working directories of running executions."""
        return self.data_dir / "scratch"


def default_workers() -> int:
    """One worker per core, at least one."""
    return max(1, os.cpu_count() or 1)


def parse_retention(text: str) -> float | None:
    """A ``--retention`` in seconds: ``2592000``, ``30d``, ``12h``, ``90m``, ``120s``; None for ``never`` or ``0``.

    Raises:
        ValueError: Not a duration, or one below a minute (the sweep's period) or above a century.

    """
    cleaned = text.strip().lower()
    if cleaned == "never":
        return None
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"a retention is seconds or a number with s, m, h or d (30d, 12h), or never; not {text!r}")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds == 0:  # "0", "0d": as never
        return None
    if not MIN_RETENTION_SECONDS <= seconds <= MAX_RETENTION_SECONDS:
        raise ValueError(f"a retention is at least 60 seconds and at most 100 years (or never), not {text!r}")
    return float(seconds)
