"""Alembic's environment: migrate the connection ``_db.migrate`` passes in ``config.attributes["connection"]``.

The connection is inside a transaction the caller opened (and holds PostgreSQL's migration lock in): Alembic runs
every revision in it, and the caller commits.
"""

from __future__ import annotations

from alembic import context

from batchscore_server import _db

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("batchscore's migrations run through batchscore_server._db.migrate (no connection was given)")
context.configure(
    connection=connection,
    target_metadata=_db.metadata,
    # SQLite cannot ALTER most things: autogenerate writes batch operations (copy-and-move) for it.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
