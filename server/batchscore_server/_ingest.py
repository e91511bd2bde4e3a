"""Receiving a batch: the body is spooled to disk as it arrives, then read, checked and stored in slices.

Neither the server's memory nor its event loop depends on the batch's size: a 1M-row body used to be parsed,
hashed and inserted whole on the event loop, which held up every other request for seconds and grew the server
by hundreds of megabytes. The rows are stored in short transactions (a long one would block the batch engine's
writes), under a batch in the internal state ``receiving`` that no request can see; a body with a bad record
removes what was stored, and a server that stops mid-way removes it when it starts again.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Request

from batchscore_server import _db
from batchscore_server._errors import ApiError
from batchscore_server._validation import iter_batch_records

RECEIVING = "receiving"
SLICE_ROWS = 5_000  # rows a transaction: ~20 ms of holding SQLite's write lock
_INSERT_ROWS = "INSERT INTO batch_rows (batch_id, idx, inputs, state) VALUES (?, ?, ?, 'pending')"


class DuplicateIdempotencyKey(Exception):
    """Another batch of the same owner took this Idempotency-Key while this one was received."""


@dataclass(frozen=True)
class SpooledBody:
    """A request body on disk.

    Attributes:
        path: The file; the receiver removes it.
        sha256: Its SHA-256, hex.
        size: Its length in bytes.

    """

    path: Path
    sha256: str
    size: int


async def spool_body(request: Request, limit: int, directory: Path) -> SpooledBody:
    """Write the request body to a new file in ``directory`` as it arrives, hashing it on the way.

    Raises:
        ApiError: 413 naming ``body`` once the body is over ``limit`` bytes (declared or received); the file is
            removed.

    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
    path = directory / f"{uuid.uuid4().hex}.body"
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"the body is over the limit of {limit} bytes", "body")
                digest.update(chunk)
                file.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledBody(path, digest.hexdigest(), size)


def store_batch(
    engine: sa.Engine, batch: Mapping[str, Any], body: Path, media_type: str, inputs: list[tuple[str, str]]
) -> int:
    """Check every record of ``body`` and store the batch with its rows; blocking (run it in a thread).

    Args:
        engine: The database.
        batch: The ``batches`` row to insert, without ``state`` and ``total``.
        body: The spooled body.
        media_type: Its media type (see ``_validation.batch_media_type``).
        inputs: The service's inputs as ``(name, type)`` pairs.

    Returns:
        The number of records; the batch is ``pending`` and every row stored.

    Raises:
        ApiError: 400 naming the field of the first bad record; nothing is left stored.
        DuplicateIdempotencyKey: The batch's Idempotency-Key was taken meanwhile; nothing is left stored.

    """
    batch_id = batch["id"]
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_db.batches).values(**batch, state=RECEIVING, total=0))
    except sa.exc.IntegrityError:
        raise DuplicateIdempotencyKey from None
    total = 0
    try:
        with body.open("rb") as file:
            records = enumerate(iter_batch_records(file, media_type, inputs))
            while rows := [(batch_id, index, text) for index, text in itertools.islice(records, SLICE_ROWS)]:
                with engine.begin() as conn:
                    conn.exec_driver_sql(_INSERT_ROWS, rows)
                total += len(rows)
        with engine.begin() as conn:
            conn.execute(
                sa.update(_db.batches).where(_db.batches.c.id == batch_id).values(state="pending", total=total)
            )
    except BaseException:
        _db.delete_batch(engine, batch_id)
        raise
    return total


def remove_unfinished_receipts(engine: sa.Engine, uploads: Path) -> None:
    """At start-up: remove batches whose receiving a stopped server never finished, and their spooled bodies."""
    with engine.connect() as conn:
        stale = list(conn.execute(sa.select(_db.batches.c.id).where(_db.batches.c.state == RECEIVING)).scalars())
    for batch_id in stale:
        _db.delete_batch(engine, batch_id)
    for path in uploads.glob("*.body"):
        path.unlink(missing_ok=True)
