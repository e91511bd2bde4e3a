"""The SQLite schema (SQLAlchemy Core) and the engine factory.

WAL mode lets pollers read while the batch engine writes; the server process is the only writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()
DELETE_SLICE_ROWS = 50_000

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
    sa.Column("definition", sa.JSON, nullable=False),
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
    sa.Column("spec", sa.JSON, nullable=False),  # the service definition the batch started with
    sa.Column("last_seq", sa.Integer, nullable=False, default=0),  # completion sequence = the polling cursor
    # Rows by final state, kept with every result: counting them per poll scanned every row of the batch.
    sa.Column("complete_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("canceled_count", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_batches_idempotency"),
)

batch_rows = sa.Table(
    "batch_rows",
    metadata,
    sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("state", sa.String, nullable=False),  # pending | running | complete | failed | canceled
    sa.Column("seq", sa.Integer),  # completion sequence; NULL until the row has a result
    sa.Column("result", sa.JSON),
    sa.Index("ix_batch_rows_seq", "batch_id", "seq"),
)


def create_engine(database_path: Path) -> sa.Engine:
    """Open (and create if needed) the database with WAL, foreign keys and a busy timeout."""
    engine = sa.create_engine(f"sqlite:///{database_path}", connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    metadata.create_all(engine)
    _upgrade(engine)
    return engine


# Row states whose count the batch keeps, and the column it is kept in.
COUNTED_STATES = {"complete": "complete_count", "failed": "failed_count", "canceled": "canceled_count"}


def _upgrade(engine: sa.Engine) -> None:
    """Bring a database written by an earlier version up to this schema (create_all only adds tables)."""
    with engine.begin() as conn:
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
        # Served the per-poll counts the columns above replaced; it only slowed every insert and result.
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_batch_rows_state")


def delete_batch(engine: sa.Engine, batch_id: str) -> None:
    """Delete a batch and its rows; blocking (run it in a thread).

    Rows go ``DELETE_SLICE_ROWS`` to a transaction: one statement over a million rows would hold SQLite's write
    lock, and so every other writer, for seconds.
    """
    rows = batch_rows.c
    while True:
        with engine.begin() as conn:
            some = sa.select(rows.idx).where(rows.batch_id == batch_id).limit(DELETE_SLICE_ROWS)
            deleted = conn.execute(sa.delete(batch_rows).where(rows.batch_id == batch_id, rows.idx.in_(some)))
            if not deleted.rowcount:
                conn.execute(sa.delete(batches).where(batches.c.id == batch_id))
                return
