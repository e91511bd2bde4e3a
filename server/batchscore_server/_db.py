"""The schema (SQLAlchemy Core), the engine factory with its migrations (Alembic), and the raw read path of polls.

SQLite (the default, in the data directory): WAL mode lets pollers read while the batch engine writes; the one
server of a data directory is its only writer. PostgreSQL (``--database-url``): several replicas share the
database; the read path runs the same fixed SQL on the engine's pooled psycopg connections.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event

metadata = sa.MetaData()
DELETE_SLICE_ROWS = 50_000
VACUUM_SLICE_PAGES = 4096  # pages freed a transaction (16 MiB of 4 KiB pages)
WAL_LIMIT_BYTES = 64 * 1024 * 1024


class JSONText(sa.types.TypeDecorator[Any]):
    """JSON kept as its text (PostgreSQL): the raw read and write paths pass JSON text through on every dialect.

    PostgreSQL's ``json`` type would have psycopg parse every result a poll reads, only for it to be serialised
    again; SQLite has no JSON type (``sa.JSON`` is text there already).
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else json.loads(value)


# SQLite keeps the type it always had (a data directory from an earlier release has it); PostgreSQL keeps text.
JSON_DOCUMENT = sa.JSON().with_variant(JSONText(), "postgresql")

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("password_hash", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_id", sa.String, primary_key=True),
    sa.Column("token_hash", sa.String, nullable=False),
    sa.Column("user_name", sa.String, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    # The token_id of the login this token descends from (by rotation): a replayed rotated token revokes them all.
    sa.Column("family", sa.String),
    sa.Index("ix_refresh_tokens_family", "family"),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # publication order, for "latest version"
    sa.Column("revision", sa.Integer, nullable=False),  # bumped by PATCH; part of the worker cache key
    sa.Column("definition", JSON_DOCUMENT, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("name", sa.String),
    sa.Column("created", sa.Float, nullable=False),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("name", sa.String),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("content_size", sa.Integer, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("completed", sa.Float),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("parallel_count", sa.Integer, nullable=False),
    sa.Column("item_timeout", sa.Float),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("error_message", sa.String),
    sa.Column("idempotency_key", sa.String),
    sa.Column("request_hash", sa.String, nullable=False),
    sa.Column("spec", JSON_DOCUMENT, nullable=False),  # the service definition the batch started with
    sa.Column("last_seq", sa.Integer, nullable=False, default=0),  # completion sequence = the polling cursor
    # Rows by final state, kept with every result: counting them per poll scanned every row of the batch.
    sa.Column("complete_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("canceled_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("input_bytes", sa.Integer, nullable=False, server_default="0"),  # its records as stored (quotas)
    # The lease of the replica driving the batch (see _batch): its id, and when the lease ends unless renewed.
    sa.Column("lease_owner", sa.String),
    sa.Column("lease_expires", sa.Float),
    # Set by a replica asked to stop a batch another replica drives: "" cancel, else the reason to fail it.
    sa.Column("stop_requested", sa.String),
    # Issue 15 (revision 0003). The labels given at start, as a JSON object (batch_labels holds them for filters).
    sa.Column("labels", JSON_DOCUMENT),
    # The failure policy: NULL is no limit.
    sa.Column("max_failed_items", sa.Integer),
    sa.Column("max_failure_ratio", sa.Float),
    sa.Column("min_failure_sample", sa.Integer),
    sa.Column("item_retries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_timeouts", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("retried_count", sa.Integer, nullable=False, server_default="0"),  # rows that ran more than once
    # When the first row started; when the current run started and how many rows were finished then (the rate).
    sa.Column("started", sa.Float),
    sa.Column("run_started", sa.Float),
    sa.Column("run_base_count", sa.Integer, nullable=False, server_default="0"),
    # Retention: seconds after finishing that the rows go (NULL: the server's --retention), when that is, and
    # whether the sweep deleted them.
    sa.Column("expires_after", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("expired", sa.Boolean, nullable=False, server_default=sa.false()),
    # Webhooks: where the batch's events go, and whether progress events are wanted.
    sa.Column("callback_url", sa.String),
    sa.Column("callback_progress", sa.Boolean, nullable=False, server_default=sa.false()),
    # Issue 16 (revision 0004): the passthrough column names given at start, a JSON list (NULL: none).
    sa.Column("passthrough", JSON_DOCUMENT),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_batches_idempotency"),
    sa.Index("ix_batches_state", "state"),
    sa.Index("ix_batches_expires_at", "expired", "expires_at"),  # the retention sweep: unexpired and due
    sa.Index("ix_batches_owner_created", "owner", "created"),
    sa.Index("ix_batches_created", "created"),
)

# A batch's labels, one row each, for GET /batches?label=key=value.
batch_labels = sa.Table(
    "batch_labels",
    metadata,
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
    sa.Index("ix_batch_labels_key_value", "key", "value"),
)

batch_rows = sa.Table(
    "batch_rows",
    metadata,
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("inputs", JSON_DOCUMENT, nullable=False),
    sa.Column("state", sa.String, nullable=False),  # pending | running | complete | failed | canceled
    sa.Column("seq", sa.Integer),  # completion sequence; NULL until the row has a result
    sa.Column("result", JSON_DOCUMENT),
    # Times the row was handed to a worker: a row that was running when its replica died runs again as attempt 2.
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    # The errors of its earlier attempts that failed and were retried, as a JSON list (NULL: none).
    sa.Column("attempts", JSON_DOCUMENT),
    # Issue 16 (revision 0004): the record's passthrough values, a JSON object (NULL: the batch declared none).
    sa.Column("passthrough", JSON_DOCUMENT),
    # Finished rows only (revision 0005): every query that uses it asks for rows with a sequence, and pending rows
    # left out make storing a batch write two b-trees a row instead of three.
    sa.Index(
        "ix_batch_rows_seq",
        "batch_id",
        "seq",
        sqlite_where=sa.text("seq IS NOT NULL"),
        postgresql_where=sa.text("seq IS NOT NULL"),
    ),
)

# Each user's webhook signing secret (Standard Webhooks), and the one it replaced, still signing until
# previous_until.
webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("user_name", sa.String, primary_key=True),
    sa.Column("secret", sa.String, nullable=False),
    sa.Column("previous_secret", sa.String),
    sa.Column("previous_until", sa.Float),
)

# The webhook outbox: every event to deliver and how its delivery went. Written in the transaction that ends the
# batch, so no event is lost to a crash; a replica leases a due delivery while it sends it.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String, primary_key=True),  # webhook-id: msg_...
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("event", sa.String, nullable=False),
    sa.Column("url", sa.String, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the body as sent (JSON text)
    sa.Column("state", sa.String, nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String, nullable=False, server_default=""),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("delivered", sa.Float),
    sa.Column("next_attempt", sa.Float),
    sa.Column("lease_owner", sa.String),
    sa.Column("lease_expires", sa.Float),
    sa.Index("ix_webhook_deliveries_due", "state", "next_attempt"),
    sa.Index("ix_webhook_deliveries_batch", "batch_id", "created"),
)

# Secrets every replica shares (the JWT signing key), so a token one replica issued is good at every other.
server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
)


BUSY_TIMEOUT_SECONDS = 30
# Memory-mapped reads: in WAL mode every commit of the batch engine invalidates each reader's page cache, so a poll
# re-reads its pages; through the map that is a memory copy instead of a read() system call per page.
MMAP_BYTES = 256 * 1024 * 1024


# PostgreSQL connections per replica: the event loop's threads, the batch engine and the read path share them.
POOL_SIZE = 10
POOL_OVERFLOW = 20


def create_engine(target: Path | str) -> sa.Engine:
    """Open a database and bring its schema to this code's (see :func:`migrate`).

    Args:
        target: A SQLite file (a ``Path``; created if needed), or a SQLAlchemy URL (``sqlite:///...`` or
            ``postgresql://...``; ``postgresql://`` and ``postgres://`` use psycopg 3).

    SQLite runs with WAL, foreign keys and a busy timeout; PostgreSQL with a pool that checks a connection before
    handing it out (a replica outlives database restarts).

    Raises:
        SchemaError: The database was written by a newer release, or holds tables not made by these migrations.

    """
    url = sa.make_url(f"sqlite:///{target}" if isinstance(target, Path) else target)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Before the first table is made, so a new file frees the pages of deleted rows (release_free_pages): a
    # refused 300 MB upload would otherwise leave the file 300 MB larger for good. A file made without it keeps
    # its mode (only a VACUUM changes it), and the pragma is then a no-op.
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    # The WAL file shrinks back to this after a checkpoint (it would stay as large as the largest upload).
    cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cursor.close()


# -- schema migrations (Alembic; the scripts are in the package's migrations/) ----------------------------------------

MIGRATIONS = "batchscore_server:migrations"
# The schema of release 61b07b2, the last before Alembic: a SQLite file without alembic_version is at it once the
# legacy upgrade (_upgrade) ran.
BASELINE_REVISION = "0001"
# pg_advisory_xact_lock's key for migrations (any fixed number; these are the bytes of "bsmigrat").
MIGRATION_LOCK_KEY = 0x62736D6967726174


class SchemaError(RuntimeError):
    """The database's schema is not one this code can migrate (newer than it, or not made by it)."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, without an ``alembic.ini``.

    Args:
        connection: The connection ``env.py`` migrates (Alembic commands run on it, in its transaction).

    """
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the newest schema revision, in one transaction; a no-op when it is there already.

    A database without tables is created at head. A SQLite file of a release from before Alembic (no
    ``alembic_version``) gets the baseline's tables it lacks and revision ``0001``, the columns of later releases
    from the legacy upgrade (``_upgrade``), then the revisions after the baseline. On
    PostgreSQL an advisory lock held to the end of the transaction makes replicas that start together migrate one
    after the other (the later ones find it done); on SQLite ``BEGIN IMMEDIATE`` does.

    Raises:
        SchemaError: The database is at a revision this code does not know (a newer release wrote it), or it has
            batchscore's tables but no revision and is not SQLite.

    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            with _sqlite_transaction(conn):
                _migrate(conn)
        else:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
                _migrate(conn)


@contextlib.contextmanager
def _sqlite_transaction(conn: sa.Connection) -> Iterator[None]:
    """Run the block in one SQLite write transaction, DDL included.

    pysqlite begins transactions by itself only before INSERT, UPDATE and DELETE: the DDL of a migration would
    commit statement by statement, and a failure half-way leave a half-migrated file. With pysqlite's own handling
    off for the block, ``BEGIN IMMEDIATE`` takes the write lock up front and covers everything.
    """
    driver = conn.connection.driver_connection
    assert driver is not None
    saved = driver.isolation_level
    driver.isolation_level = None
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        driver.isolation_level = saved


def _migrate(conn: sa.Connection) -> None:
    config = alembic_config(conn)
    script = ScriptDirectory.from_config(config)
    heads = set(script.get_heads())
    current = set(MigrationContext.configure(conn).get_current_heads())
    unknown = sorted(revision for revision in current if not _known(script, revision))
    if unknown:
        raise SchemaError(
            f"the database is at schema revision {', '.join(unknown)}, which this batchscore does not know (its"
            f" newest is {', '.join(sorted(heads))}): a newer release wrote it; run that release, or restore the"
            " backup made before upgrading"
        )
    ours = "batches" in sa.inspect(conn).get_table_names()
    if ours and not current:  # a file of a release from before Alembic
        if conn.dialect.name != "sqlite":
            raise SchemaError(
                "the database has batchscore's tables but no alembic_version: it was not made by batchscore's"
                " migrations; use an empty database"
            )
        # The baseline adds only the tables the file lacks, and records the revision; _upgrade below the columns.
        command.upgrade(config, BASELINE_REVISION)
        current = {BASELINE_REVISION}
    if conn.dialect.name == "sqlite" and ours:
        # Every start, not only on a file from before Alembic: it is idempotent and cheap, and it also repairs a
        # file at a revision that lost columns of the legacy shape (tests/server/test_auth_hardening.py drops some).
        _upgrade(conn)
    if current != heads:
        command.upgrade(config, "heads")


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:  # "Can't locate revision identified by ..."
        return False


# -- the raw read path of polls --------------------------------------------------------------------------------------
# A poll is the server's most frequent request (hundreds a second with a few hundred watchers). Through SQLAlchemy
# Core, building, cache-keying and executing its statements and wrapping their rows cost more CPU than SQLite's work
# (bench P8's profile: a third of the server's CPU under 400 polls/s); these run fixed SQL on plain sqlite3
# connections kept for reading.

POLL_BATCH_COLUMNS = (
    "id",
    "name",
    "version",
    "owner",
    "created",
    "completed",
    "state",
    "parallel_count",
    "item_timeout",
    "total",
    "error_message",
    "last_seq",
    "complete_count",
    "failed_count",
    "canceled_count",
    # Issue 15's summary fields.
    "started",
    "run_started",
    "run_base_count",
    "labels",
    "max_failed_items",
    "max_failure_ratio",
    "min_failure_sample",
    "item_retries",
    "retry_timeouts",
    "retried_count",
    "expires_at",
    "expired",
    "callback_url",
    "passthrough",  # issue 16
)
# Not "SELECT *": the spec (the whole service definition, JSON) is not needed to answer a poll.
_POLL_BATCH_SQL = f"SELECT {', '.join(POLL_BATCH_COLUMNS)} FROM batches WHERE id = ? AND name = ? AND version = ?"
# A poll after a cursor: the batch and its page's bounds in one statement (one round trip on PostgreSQL, where a
# poll's cost is its round trips): the completion sequence of the page's last row, None when fewer rows finished
# after the cursor than a page holds, and the highest one finished after the cursor.
_POLL_AFTER_SQL = (
    f"SELECT {', '.join(POLL_BATCH_COLUMNS)}, "
    "(SELECT seq FROM batch_rows WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT 1 OFFSET ?), "
    "(SELECT max(seq) FROM batch_rows WHERE batch_id = ? AND seq > ?) "
    "FROM batches WHERE id = ? AND name = ? AND version = ?"
)
# Without a page size no row ends a page (an OFFSET past the end would walk every row after the cursor).
_POLL_AFTER_UNPAGED_SQL = (
    f"SELECT {', '.join(POLL_BATCH_COLUMNS)}, NULL, "
    "(SELECT max(seq) FROM batch_rows WHERE batch_id = ? AND seq > ?) "
    "FROM batches WHERE id = ? AND name = ? AND version = ?"
)
_ALL_RESULTS_SQL = "SELECT idx, state, result, seq FROM batch_rows WHERE batch_id = ? AND seq IS NOT NULL ORDER BY idx"
_RESULTS_AFTER_SQL = (
    "SELECT idx, state, result, seq FROM batch_rows WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_NO_LIMIT = 2**62  # "LIMIT -1" is SQLite's alone


class ReadPool:
    """Plain sqlite3 connections for reads (``PRAGMA query_only``), reused across threads, opened on demand.

    Args:
        database_path: The database file (its engine set WAL mode on it already).
        keep: Idle connections kept for reuse; more are opened when more threads read at once, and closed after.

    """

    def __init__(self, database_path: Path, keep: int = 8) -> None:
        self._path = database_path
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue(maxsize=keep)
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode: each read_snapshot() opens and ends its own transaction explicitly.
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return conn

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction: every query in the block sees the same state of the database.

        Blocking: use it in a thread. A poll reads the batch and then its rows; without the transaction a result
        committed between the two reads could be sent with a cursor that does not cover it (and so sent twice).
        """
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
        broken = True  # until the transaction ended cleanly (an error in the block itself does not break it)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")  # ends the read transaction; nothing was written
                broken = False
        finally:
            self._give_back(conn, broken)

    def _give_back(self, conn: sqlite3.Connection, broken: bool) -> None:
        if broken or self._closed:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when they are given back."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class PgReadPool:
    """PostgreSQL's reads of polls: the engine's pooled psycopg connections, one snapshot per block.

    A block's queries go out in psycopg's pipeline mode: the snapshot's ``BEGIN`` travels with the block's first
    query and each fetch costs one round trip. A poll so costs 4 round trips (the pool's ping, ``BEGIN`` and the
    batch with its bounds, the first chunk, ``ROLLBACK``), not 8: under 400 polls/s on a busy machine the round trips
    to a PostgreSQL sharing the cores were what the answers waited for (P9-pg).

    Args:
        engine: A PostgreSQL engine.

    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[Any]:
        """A reader inside one ``REPEATABLE READ READ ONLY`` transaction (see :meth:`ReadPool.read_snapshot`)."""
        import psycopg  # only where PostgreSQL is used

        pooled = self._engine.raw_connection()
        try:
            conn = pooled.driver_connection
            assert conn is not None  # a checked-out connection has one
            # Connection attributes, not a statement: psycopg sends them with the transaction's BEGIN.
            saved = conn.isolation_level, conn.read_only
            conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
            try:
                with conn.pipeline():
                    try:
                        yield _QmarkConnection(conn)
                    finally:
                        conn.rollback()  # ends the read transaction; nothing was written
            finally:
                try:
                    conn.isolation_level, conn.read_only = saved  # as the pool's other users expect
                except psycopg.Error:
                    pooled.invalidate()  # broken: closed, not given to the pool's next user
        finally:
            pooled.close()  # back to the engine's pool


class _QmarkConnection:
    """A psycopg connection taking the read path's SQL as written for sqlite3 (``?`` placeholders)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(pyformat(sql), parameters)


def pyformat(sql: str) -> str:
    """SQL written with sqlite3's ``?`` placeholders, for a driver that takes ``%s`` (psycopg).

    Only for the fixed SQL of this package: a ``?`` or ``%`` inside a string literal is not told apart.
    """
    return _PYFORMAT.get(sql) or _PYFORMAT.setdefault(sql, sql.replace("%", "%%").replace("?", "%s"))


_PYFORMAT: dict[str, str] = {}


def driver_sql(conn: sa.Connection, sql: str) -> str:
    """Fixed SQL with ``?`` placeholders in the paramstyle of ``conn``'s driver (for ``exec_driver_sql``)."""
    return sql if conn.dialect.paramstyle == "qmark" else pyformat(sql)


_READ_POOLS: weakref.WeakKeyDictionary[sa.Engine, ReadPool | PgReadPool] = weakref.WeakKeyDictionary()
_READ_POOLS_LOCK = threading.Lock()


def read_pool(engine: sa.Engine) -> ReadPool | PgReadPool:
    """The read pool of an engine's database (made on first use, closed with ``engine.dispose()``)."""
    with _READ_POOLS_LOCK:
        pool = _READ_POOLS.get(engine)
        if pool is None:
            if engine.dialect.name != "sqlite":
                pool = _READ_POOLS[engine] = PgReadPool(engine)
                return pool
            database = engine.url.database
            if not database:
                raise ValueError("a read pool needs a database file")
            sqlite_pool = _READ_POOLS[engine] = ReadPool(Path(database))
            event.listen(engine, "engine_disposed", lambda _engine: sqlite_pool.close())
            pool = sqlite_pool
        return pool


def poll_batch(conn: Any, batch_id: str, name: str, version: str) -> dict[str, Any] | None:
    """A batch's ``POLL_BATCH_COLUMNS`` (a dict), or None when no batch has this id, service name and version."""
    row = conn.execute(_POLL_BATCH_SQL, (batch_id, name, version)).fetchone()
    return None if row is None else dict(zip(POLL_BATCH_COLUMNS, row, strict=True))


def poll_batch_after(
    conn: Any, batch_id: str, name: str, version: str, after: int, page: int | None
) -> tuple[dict[str, Any], int | None, int | None] | None:
    """A poll after the cursor ``after``: the batch (as :func:`poll_batch`), and its page's bounds.

    Returns:
        None when no batch has this id, service name and version; else the batch, the completion sequence of the
        ``page``-th row finished after ``after`` (None when fewer did, or ``page`` is None), and the highest
        completion sequence finished after ``after`` (None when none did).

    """
    if page is None:
        row = conn.execute(_POLL_AFTER_UNPAGED_SQL, (batch_id, after, batch_id, name, version)).fetchone()
    else:
        parameters = (batch_id, after, page - 1, batch_id, after, batch_id, name, version)
        row = conn.execute(_POLL_AFTER_SQL, parameters).fetchone()
    if row is None:
        return None
    width = len(POLL_BATCH_COLUMNS)
    batch = dict(zip(POLL_BATCH_COLUMNS, row[:width], strict=True))
    page_end, last = row[width:]
    return batch, None if page_end is None else int(page_end), None if last is None else int(last)


def finished_rows(conn: Any, batch_id: str, after: int | None, limit: int | None) -> list[tuple[int, str, str, int]]:
    """``(idx, state, result JSON text, seq)`` of a batch's rows that have a result.

    ``after`` None: every such row in index order. Else the rows finished after that completion sequence (the
    cursor), in completion order, at most ``limit`` of them (all when None).
    """
    if after is None:
        return list(conn.execute(_ALL_RESULTS_SQL, (batch_id,)).fetchall())
    return list(conn.execute(_RESULTS_AFTER_SQL, (batch_id, after, _NO_LIMIT if limit is None else limit)).fetchall())


# Polls stream their rows a chunk at a time (see Store.poll_page), each chunk after a key: the index in index order,
# the completion sequence in completion order, and only rows finished by the poll's ``bound`` (its snapshot).
# "+seq" keeps SQLite on the primary key, in index order; on the (batch_id, seq) index it sorted every finished row.
_CHUNK_BY_INDEX_SQL = (
    "SELECT idx, state, result, attempt, idx FROM batch_rows "
    "WHERE batch_id = ? AND idx > ? AND +seq <= ? ORDER BY idx LIMIT ?"
)
_CHUNK_BY_SEQ_SQL = (
    "SELECT idx, state, result, attempt, seq FROM batch_rows "
    "WHERE batch_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
# The same rows with their passthrough values and inputs after the key (an export of a batch with passthrough
# columns, or one asked to include the inputs: issue 16).
_WIDE_CHUNK_SQL = {
    by_seq: sql.replace(f"{key} FROM batch_rows", f"{key}, passthrough, inputs FROM batch_rows")
    for by_seq, key, sql in ((False, "idx", _CHUNK_BY_INDEX_SQL), (True, "seq", _CHUNK_BY_SEQ_SQL))
}


def result_chunk(
    conn: Any,
    batch_id: str,
    by_seq: bool,
    after: int,
    bound: int,
    max_rows: int,
    max_bytes: int,
    passthrough: bool = False,
) -> tuple[list[tuple[int, str, str, int]], int | None]:
    """One chunk of a poll's rows: ``(idx, state, result JSON text, attempt)`` and the key to read the next after.

    As :func:`keyed_result_chunk`, without each row's key; with ``passthrough``, each row's passthrough values
    (JSON text) as a fifth item.
    """
    rows, key = keyed_result_chunk(conn, batch_id, by_seq, after, bound, max_rows, max_bytes, passthrough)
    if passthrough:
        return [(*row[:4], row[5]) for row in rows], key  # type: ignore[misc]
    return [row[:4] for row in rows], key


def keyed_result_chunk(
    conn: Any, batch_id: str, by_seq: bool, after: int, bound: int, max_rows: int, max_bytes: int, wide: bool = False
) -> tuple[list[tuple[int, str, str, int, int]], int | None]:
    """One chunk of rows with their key: ``(idx, state, result JSON text, attempt, key)`` and the key to read after.

    The key is the index in index order and the completion sequence in completion order (an export's cursor).

    Args:
        conn: A read connection.
        batch_id: The batch.
        by_seq: In completion order, after the completion sequence ``after``; else in index order after the index
            ``after``.
        after: The key the chunk starts after.
        bound: Only rows whose completion sequence is at most this (finished when the poll began).
        max_rows: At most this many rows.
        max_bytes: The chunk ends after the row that brings its results to this many characters: its memory is
            bounded whatever the batch's size (rows are read one at a time, and the rest left unread).
        wide: Each row also has its passthrough values and its inputs (JSON texts; passthrough NULL when none).

    Returns:
        The rows, and the key after the last of them, or None when there are no more.

    """
    sql = _WIDE_CHUNK_SQL[by_seq] if wide else (_CHUNK_BY_SEQ_SQL if by_seq else _CHUNK_BY_INDEX_SQL)
    cursor = conn.execute(sql, (batch_id, after, bound, max_rows))
    rows: list[Any] = []
    size = 0
    key = after
    try:
        for row in cursor:
            rows.append(tuple(row))
            key = row[4]
            size += len(row[2]) + (len(row[6]) if wide else 0)
            if size >= max_bytes:
                return rows, key
    finally:
        cursor.close()
    return rows, key if len(rows) == max_rows else None


# Row states whose count the batch keeps, and the column it is kept in.
COUNTED_STATES = {"complete": "complete_count", "failed": "failed_count", "canceled": "canceled_count"}


def _upgrade(conn: sa.Connection) -> None:
    """Bring a SQLite file written by a release before Alembic up to the baseline (revision 0001); idempotent.

    Frozen: it knows the releases up to 61b07b2 only. Should a revision ever drop or rename a column it adds, run
    it only on files without ``alembic_version``.
    """
    columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(batches)")}
    missing = [column for column in COUNTED_STATES.values() if column not in columns]
    for column in missing:
        conn.exec_driver_sql(f"ALTER TABLE batches ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
    if missing:
        for state, column in COUNTED_STATES.items():
            conn.exec_driver_sql(
                f"UPDATE batches SET {column} = "  # column names from COUNTED_STATES only
                "(SELECT count(*) FROM batch_rows WHERE batch_rows.batch_id = batches.id AND state = ?)",
                (state,),
            )
    _add_missing_columns(conn)
    # Served the per-poll counts the columns above replaced; it only slowed every insert and result.
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_batch_rows_state")


def _add_missing_columns(conn: sa.Connection) -> None:
    """Add the columns of user sessions and quotas to a database written before them."""
    tokens = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(refresh_tokens)")}
    if "family" not in tokens:
        conn.exec_driver_sql("ALTER TABLE refresh_tokens ADD COLUMN family VARCHAR")
    # A token from before families is the head of its own.
    conn.exec_driver_sql("UPDATE refresh_tokens SET family = token_id WHERE family IS NULL")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_refresh_tokens_family ON refresh_tokens (family)")
    batch_columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(batches)")}
    if "input_bytes" not in batch_columns:
        conn.exec_driver_sql("ALTER TABLE batches ADD COLUMN input_bytes INTEGER NOT NULL DEFAULT 0")


def delete_batch(engine: sa.Engine, batch_id: str) -> None:
    """Delete a batch and its rows; blocking (run it in a thread).

    Rows go ``DELETE_SLICE_ROWS`` to a transaction: one statement over a million rows would hold SQLite's write
    lock, and so every other writer, for seconds.
    """
    delete_batch_rows(engine, batch_id)
    with engine.begin() as conn:
        conn.execute(sa.delete(batches).where(batches.c.id == batch_id))
    release_free_pages(engine)


def release_free_pages(engine: sa.Engine) -> None:
    """Give a SQLite file's free pages back to the file system, a slice a transaction; blocking.

    Does nothing for PostgreSQL (its autovacuum reuses the space) or a SQLite file made before
    ``auto_vacuum=INCREMENTAL`` (run ``VACUUM`` on it once, server stopped, to switch it).
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None  # an open connection's
        if raw.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2: incremental
            return
        before = None
        while (free := raw.execute("PRAGMA freelist_count").fetchone()[0]) and free != before:
            # executescript steps the pragma to its end (execute frees one page); each script is its own short
            # transaction, as one over every page would hold the write lock for long.
            raw.executescript(f"PRAGMA incremental_vacuum({VACUUM_SLICE_PAGES});")
            before = free
        # The file shrinks when the WAL is copied back into it; a busy reader only delays that to a later one.
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def delete_batch_rows(engine: sa.Engine, batch_id: str) -> None:
    """Delete a batch's rows, ``DELETE_SLICE_ROWS`` to a transaction (see :func:`delete_batch`); blocking."""
    rows = batch_rows.c
    while True:
        with engine.begin() as conn:
            some = sa.select(rows.idx).where(rows.batch_id == batch_id).limit(DELETE_SLICE_ROWS)
            deleted = conn.execute(sa.delete(batch_rows).where(rows.batch_id == batch_id, rows.idx.in_(some)))
            if not deleted.rowcount:
                return
