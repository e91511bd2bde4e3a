"""Tables that fit (issue 16): a batch's passthrough column names, and each row's passthrough values.

Two nullable columns (SQLite adds both in place, no table is copied).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen like the baseline's: JSON on SQLite, text on PostgreSQL (what _db.JSON_DOCUMENT makes today).
JSON_DOCUMENT = sa.JSON().with_variant(sa.Text(), "postgresql")


def upgrade() -> None:
    """Add ``batches.passthrough`` (the names) and ``batch_rows.passthrough`` (the values)."""
    op.add_column("batches", sa.Column("passthrough", JSON_DOCUMENT))
    op.add_column("batch_rows", sa.Column("passthrough", JSON_DOCUMENT))


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_column("batch_rows", "passthrough")
    op.drop_column("batches", "passthrough")
