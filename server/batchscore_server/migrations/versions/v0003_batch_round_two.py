"""Batch, round two (issue 15): labels, failure policy and retries, rate, retention, webhooks.

New nullable columns, or NOT NULL ones with a server default (SQLite adds both in place, no table is copied);
the ``batch_labels``, ``webhook_secrets`` and ``webhook_deliveries`` tables; indexes for the batch list (by owner
and creation time) and for the retention sweep.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen like the baseline's: JSON on SQLite, text on PostgreSQL (what _db.JSON_DOCUMENT makes today).
JSON_DOCUMENT = sa.JSON().with_variant(sa.Text(), "postgresql")

_BATCH_COLUMNS: list[sa.Column[object]] = [
    sa.Column("labels", JSON_DOCUMENT),
    sa.Column("max_failed_items", sa.Integer),
    sa.Column("max_failure_ratio", sa.Float),
    sa.Column("min_failure_sample", sa.Integer),
    sa.Column("item_retries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_timeouts", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("retried_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started", sa.Float),
    sa.Column("run_started", sa.Float),
    sa.Column("run_base_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("expires_after", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("expired", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("callback_url", sa.String),
    sa.Column("callback_progress", sa.Boolean, nullable=False, server_default=sa.false()),
]
_BATCH_INDEXES = {
    "ix_batches_expires_at": ["expired", "expires_at"],
    "ix_batches_owner_created": ["owner", "created"],
    "ix_batches_created": ["created"],
}


def upgrade() -> None:
    """Add the columns, tables and indexes of issue 15."""
    for column in _BATCH_COLUMNS:
        op.add_column("batches", column)
    for name, columns in _BATCH_INDEXES.items():
        op.create_index(name, "batches", columns)
    op.add_column("batch_rows", sa.Column("attempts", JSON_DOCUMENT))
    op.create_table(
        "batch_labels",
        sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )
    op.create_index("ix_batch_labels_key_value", "batch_labels", ["key", "value"])
    op.create_table(
        "webhook_secrets",
        sa.Column("user_name", sa.String, primary_key=True),
        sa.Column("secret", sa.String, nullable=False),
        sa.Column("previous_secret", sa.String),
        sa.Column("previous_until", sa.Float),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("batch_id", sa.String, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("event", sa.String, nullable=False),
        sa.Column("url", sa.String, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.String, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("delivered", sa.Float),
        sa.Column("next_attempt", sa.Float),
        sa.Column("lease_owner", sa.String),
        sa.Column("lease_expires", sa.Float),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt"])
    op.create_index("ix_webhook_deliveries_batch", "webhook_deliveries", ["batch_id", "created"])


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_secrets")
    op.drop_table("batch_labels")
    op.drop_column("batch_rows", "attempts")
    for name in _BATCH_INDEXES:
        op.drop_index(name, "batches")
    for column in reversed(_BATCH_COLUMNS):
        op.drop_column("batches", column.name)
