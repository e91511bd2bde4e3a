"""Baseline: the schema of release 61b07b2, the last one before Alembic.

Written out table by table (not from ``_db.metadata``, which moves on). A table that exists already is left alone:
a SQLite file of a release before Alembic runs this revision too (``_db.migrate``), which adds the tables it lacks
(as ``create_all`` did at every start), and ``_db``'s legacy upgrade then adds the columns of later releases.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# JSON documents: SQLite's JSON (as that release made them), text on PostgreSQL (``_db.JSON_DOCUMENT``'s DDL, frozen
# here: the JSON encoding is the application's business, the column type this revision's).
JSON_DOCUMENT = sa.JSON().with_variant(sa.Text(), "postgresql")


def upgrade() -> None:
    """Create the tables of release 61b07b2 (those missing: see the module docstring)."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    def create_table(name: str, *elements: sa.schema.SchemaItem, indexes: dict[str, list[str]] | None = None) -> None:
        if name in existing:
            return
        op.create_table(name, *elements)
        for index, columns in (indexes or {}).items():
            op.create_index(index, name, columns)

    create_table(
        "users",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    create_table(
        "refresh_tokens",
        sa.Column("token_id", sa.String, primary_key=True),
        sa.Column("token_hash", sa.String, nullable=False),
        sa.Column("user_name", sa.String, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("family", sa.String),
        indexes={"ix_refresh_tokens_family": ["family"]},
    )
    create_table(
        "services",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("version", sa.String, primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
    )
    create_table(
        "sessions",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("name", sa.String),
        sa.Column("created", sa.Float, nullable=False),
    )
    create_table(
        "snapshots",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("name", sa.String),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("content_size", sa.Integer, nullable=False),
    )
    create_table(
        "batches",
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
        sa.Column("spec", JSON_DOCUMENT, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("complete_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("canceled_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("input_bytes", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_batches_idempotency"),
    )
    create_table(
        "batch_rows",
        sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("inputs", JSON_DOCUMENT, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("seq", sa.Integer),
        sa.Column("result", JSON_DOCUMENT),
        indexes={"ix_batch_rows_seq": ["batch_id", "seq"]},
    )


def downgrade() -> None:
    """Drop every table (and so every row)."""
    for table in ("batch_rows", "batches", "snapshots", "sessions", "services", "refresh_tokens", "users"):
        op.drop_table(table)
