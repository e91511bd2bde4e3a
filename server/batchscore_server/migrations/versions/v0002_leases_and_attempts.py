"""Leases and attempts: what several replicas on one database need.

A batch's lease (``lease_owner``, ``lease_expires``) and a stop asked by another replica (``stop_requested``), an
index on the batch state (replicas look for work by it), each row's ``attempt``, and the secrets every replica shares
(``server_keys``). Only ``op.add_column`` of nullable columns or of a NOT NULL one with a server default: SQLite's
``ALTER TABLE ADD COLUMN`` does both, so no table is copied.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the lease, stop and attempt columns, the state index and ``server_keys``."""
    op.add_column("batches", sa.Column("lease_owner", sa.String))
    op.add_column("batches", sa.Column("lease_expires", sa.Float))
    op.add_column("batches", sa.Column("stop_requested", sa.String))
    op.create_index("ix_batches_state", "batches", ["state"])
    op.add_column("batch_rows", sa.Column("attempt", sa.Integer, nullable=False, server_default="0"))
    # Rows that ran under an earlier release ran once (as far as anyone can tell now); canceled ones never did.
    op.execute("UPDATE batch_rows SET attempt = 1 WHERE seq IS NOT NULL AND state <> 'canceled'")
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added (SQLite 3.35+ drops a column in place)."""
    op.drop_table("server_keys")
    op.drop_column("batch_rows", "attempt")
    op.drop_index("ix_batches_state", "batches")
    for column in ("stop_requested", "lease_expires", "lease_owner"):
        op.drop_column("batches", column)
