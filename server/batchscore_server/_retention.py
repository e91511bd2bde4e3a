"""Retention: a finished batch's records, results and files are deleted once its ``expiresAt`` has passed.

A batch gets its ``expires_at`` when it finishes (complete, failed or canceled): its finish time plus its
``expiresAfter``, else the server's ``--retention`` (none: kept for ever); a retry, which makes it unfinished again,
clears it. Every replica sweeps once at start and then every ``SWEEP_SECONDS``: each batch due is claimed with a
conditional update (so replicas never sweep one batch twice at once), its files and rows are deleted, and it is
marked ``expired``. Its summary (counts, times, labels, state) stays. A sweep stopped midway (kill -9) leaves the
batch unmarked, with its claim running out: the next sweep after that does it again, as each step can be repeated.

From its ``expiresAt`` on, before the sweep came too, its files and a retry are answered 410 (the contract's
``Gone``); its status shows no results once the rows are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from batchscore_server._errors import ApiError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from batchscore_server._store import Store

    Batch = sa.RowMapping | Mapping[str, Any]  # a batches row, or a poll's columns of it

log = logging.getLogger("batchscore_server.retention")

SWEEP_SECONDS = 60.0
# Batches one sweep expires at most: each is a few short transactions, and a backlog (a server that was off for a
# while) is worked off a bounded step at a time, never holding the database for one long stretch.
SWEEP_BATCHES = 50
BACKLOG_PAUSE_SECONDS = 1.0
# How long a sweeping replica's claim on a batch lasts: a replica that died mid-sweep leaves it to the others after.
CLAIM_SECONDS = 600.0


def is_expired(batch: Batch, now: float) -> bool:
    """Whether a batch's records are gone or due to go: the sweep deleted them, or its ``expiresAt`` passed."""
    return bool(batch["expired"]) or (batch["expires_at"] is not None and batch["expires_at"] <= now)


def expired_error(batch: Batch) -> ApiError:
    """The contract's ``Gone`` (410) for an expired batch, naming ``executionId``."""
    when = datetime.fromtimestamp(batch["expires_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ApiError(410, f"batch {batch['id']} expired at {when}; its results were deleted", "executionId")


def check_not_expired(batch: Batch) -> None:
    """Refuse what needs an expired batch's records or files.

    Raises:
        ApiError: 410 naming ``executionId``.

    """
    if is_expired(batch, time.time()):
        raise expired_error(batch)


async def sweep_forever(store: Store, sweeper: str) -> None:
    """Expire the batches due, now and then every ``SWEEP_SECONDS``, until canceled (the server's lifespan).

    Args:
        store: The database and the artifacts; its calls run in a worker thread, never on the event loop.
        sweeper: This replica's name in its claims.

    """
    while True:
        expired = 0
        try:
            for batch_id in await asyncio.to_thread(store.due_batches, time.time(), SWEEP_BATCHES):
                expired += await _finish_on_cancel(
                    asyncio.to_thread(store.expire_batch, batch_id, sweeper, time.time())
                )
            if expired:
                log.info("retention: deleted the records and files of %d expired batches", expired)
        except Exception:  # the database is away, or a disk error: the next sweep tries again
            log.warning("the retention sweep failed; it runs again in %s s", SWEEP_SECONDS, exc_info=True)
        # A full sweep may have left more due (a server that was off for a while): the next step follows soon.
        await asyncio.sleep(BACKLOG_PAUSE_SECONDS if expired >= SWEEP_BATCHES else SWEEP_SECONDS)


async def _finish_on_cancel(work: Coroutine[Any, Any, bool]) -> bool:
    """Await ``work``; when canceled, let it end first (a thread cannot be stopped: it must not outlive the engine)."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
