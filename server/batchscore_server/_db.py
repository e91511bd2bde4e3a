"""The SQLite schema (SQLAlchemy Core) and the engine factory.

WAL mode lets pollers read while the batch engine writes; the server process is the only writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()

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
    sa.Index("ix_batch_rows_state", "batch_id", "state"),
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
    return engine
