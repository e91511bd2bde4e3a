"""The batch engine: runs each batch's rows on Dask distributed, at most ``parallelCount`` at a time.

Rows go to workers in chunks (one Dask task runs several rows one after another), so scheduler overhead is paid
per chunk, not per row; keeping at most ``min(parallelCount, worker threads)`` chunks in flight bounds how many
rows of one batch run at once. Every result is written to SQLite with a per-batch completion sequence number
(the polling cursor) before anything else sees it, so a restart resumes from the database alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from typing import Any

import dask
import sqlalchemy as sa
from distributed import Client, Event, Future, LocalCluster
from distributed import wait as wait_for_futures
from distributed.scheduler import KilledWorker

from batchscore_server import _db
from batchscore_server._settings import Settings
from batchscore_server._worker import CANCEL_SETTLE_SECONDS, run_chunk

log = logging.getLogger("batchscore_server.batch")

UNFINISHED_STATES = ("pending", "ready", "inProgress")
FINAL_STATES = ("complete", "failed", "canceled")
MAX_CHUNK_ROWS = 500
CHUNKS_PER_SLOT = 4  # several chunks per parallel slot keep results flowing before the batch ends
WORKER_DIED = "the worker process running this row died (it crashed, was killed, or exceeded its memory limit)"

# Scheduler settings from the measured pitfalls: a dead worker must fail its task at once instead of re-running
# it elsewhere (allowed-failures 0), and no worker may queue a second task it cannot start (worker-saturation 1.0),
# else one death also fails an innocent queued chunk.
DASK_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}


def _cancel_event_name(batch_id: str) -> str:
    return f"batchscore-cancel-{batch_id}"


class BatchEngine:
    """Starts, resumes, cancels and finishes batches.

    Args:
        settings: Server settings (workers, scheduler address, data directories).
        engine: The database.

    """

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._canceled: set[str] = set()

    @property
    def client(self) -> Client:
        """The Dask client (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("the batch engine is not started")
        return self._client

    async def start(self) -> None:
        """Connect to (or start) the Dask cluster and resume every unfinished batch."""
        dask.config.set(DASK_CONFIG)
        address = self._settings.scheduler
        if address is None:
            self._cluster = await asyncio.to_thread(
                LocalCluster,
                n_workers=self._settings.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: never collide with another cluster on 8787
            )
            address = self._cluster.scheduler_address
        self._client = await Client(address, asynchronous=True)
        self._resume()

    async def close(self) -> None:
        """Stop scheduling (rows keep their recorded results) and disconnect from Dask."""
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.close()
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.close)

    async def worker_count(self) -> int:
        """Worker threads the cluster has now."""
        info = self.client.scheduler_info()
        return sum(worker.get("nthreads", 1) for worker in info.get("workers", {}).values())

    def launch(self, batch_id: str) -> None:
        """Start running a batch (that is in the database with pending rows)."""
        self._canceled.discard(batch_id)
        self._tasks[batch_id] = asyncio.create_task(self._run(batch_id), name=f"batch-{batch_id}")

    async def cancel(self, batch_id: str) -> None:
        """Stop a batch: no row starts after this returns; running rows finish and keep their results."""
        self._canceled.add(batch_id)
        await Event(_cancel_event_name(batch_id), client=self.client).set()
        # Workers cache the cancel flag briefly (see _worker): waiting longer than that cache means no row of
        # this batch can start after we return.
        await asyncio.sleep(CANCEL_SETTLE_SECONDS)
        task = self._tasks.get(batch_id)
        if task is None:
            with self._engine.begin() as conn:
                self._finish_canceled(conn, batch_id)

    async def wait(self, batch_id: str) -> None:
        """Wait until the engine is done with a batch (for DELETE after cancel)."""
        task = self._tasks.get(batch_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    # -- internals -------------------------------------------------------------------------------------------

    def _resume(self) -> None:
        with self._engine.begin() as conn:
            unfinished = (
                conn.execute(sa.select(_db.batches.c.id).where(_db.batches.c.state.in_(UNFINISHED_STATES)))
                .scalars()
                .all()
            )
            # A row that was running when the server stopped has no result; it runs again from the start.
            conn.execute(
                sa.update(_db.batch_rows)
                .where(_db.batch_rows.c.batch_id.in_(unfinished), _db.batch_rows.c.state == "running")
                .values(state="pending")
            )
        for batch_id in unfinished:
            log.info("resuming batch %s", batch_id)
            self.launch(batch_id)

    async def _run(self, batch_id: str) -> None:
        try:
            await self._schedule(batch_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the batch could not run at all: record why instead of dying silently
            log.exception("batch %s failed", batch_id)
            with self._engine.begin() as conn:
                self._fail_batch(conn, batch_id, f"the batch engine failed: {error!r}")
        finally:
            self._tasks.pop(batch_id, None)
            with contextlib.suppress(Exception):
                await Event(_cancel_event_name(batch_id), client=self.client).clear()

    async def _schedule(self, batch_id: str) -> None:
        with self._engine.begin() as conn:
            batch = conn.execute(sa.select(_db.batches).where(_db.batches.c.id == batch_id)).mappings().one()
            pending = conn.execute(
                sa.select(_db.batch_rows.c.idx, _db.batch_rows.c.inputs)
                .where(_db.batch_rows.c.batch_id == batch_id, _db.batch_rows.c.state == "pending")
                .order_by(_db.batch_rows.c.idx)
            ).all()
            conn.execute(sa.update(_db.batches).where(_db.batches.c.id == batch_id).values(state="inProgress"))
        spec = batch["spec"]
        slots = max(1, min(batch["parallel_count"], await self.worker_count() or 1))
        chunk_rows = max(1, min(MAX_CHUNK_ROWS, math.ceil(len(pending) / (slots * CHUNKS_PER_SLOT))))
        queue: deque[list[tuple[int, Any]]] = deque(
            [[(row.idx, row.inputs) for row in pending[i : i + chunk_rows]] for i in range(0, len(pending), chunk_rows)]
        )
        artifact_root = str(self._settings.artifacts_dir / batch_id)
        scratch_root = str(self._settings.scratch_dir)
        in_flight: dict[Future[Any], list[tuple[int, Any]]] = {}
        failure: str | None = None
        while (queue or in_flight) and failure is None:
            while queue and len(in_flight) < slots and batch_id not in self._canceled:
                chunk = queue.popleft()
                self._mark_running(batch_id, [index for index, _ in chunk])
                future = self.client.submit(
                    run_chunk,
                    spec,
                    chunk,
                    scratch_root,
                    artifact_root,
                    _cancel_event_name(batch_id),
                    key=f"batch-{batch_id}-{uuid.uuid4().hex}",
                    pure=False,
                )
                in_flight[future] = chunk
            if not in_flight:
                break
            done, _ = await wait_for_futures(list(in_flight), return_when="FIRST_COMPLETED")
            for future in done:
                chunk = in_flight.pop(future)
                failure = await self._collect(batch_id, future, chunk, queue) or failure
        for future in in_flight:
            future.cancel()
        with self._engine.begin() as conn:
            if failure is not None:
                self._fail_batch(conn, batch_id, failure)
            elif batch_id in self._canceled:
                self._finish_canceled(conn, batch_id)
            else:
                conn.execute(
                    sa.update(_db.batches)
                    .where(_db.batches.c.id == batch_id, _db.batches.c.state == "inProgress")
                    .values(state="complete", completed=time.time())
                )

    async def _collect(
        self, batch_id: str, future: Future[Any], chunk: list[tuple[int, Any]], queue: deque[list[tuple[int, Any]]]
    ) -> str | None:
        """Record a finished chunk; returns a batch-level failure reason when the service cannot run at all."""
        try:
            outcome = await future
        except KilledWorker:
            if len(chunk) > 1:
                # Which row killed the worker is unknown: run the chunk's rows one per task to find it.
                self._mark_pending(batch_id, [index for index, _ in chunk])
                queue.extendleft([[row] for row in reversed(chunk)])
                return None
            self._record(batch_id, {chunk[0][0]: _failure(WORKER_DIED)})
            return None
        except Exception as error:
            self._record(batch_id, {index: _failure(f"the row could not be run: {error!r}") for index, _ in chunk})
            return None
        results: dict[int, dict[str, Any]] = {int(index): result for index, result in outcome["rows"].items()}
        init_failure: str | None = next((str(r["errorMessage"]) for r in results.values() if r.get("initFailed")), None)
        if init_failure is not None:
            return init_failure
        self._record(batch_id, results)
        not_run = [index for index, _ in chunk if index not in results]
        if not_run:
            self._mark_pending(batch_id, not_run)
        return None

    def _mark_running(self, batch_id: str, indexes: list[int]) -> None:
        self._set_row_state(batch_id, indexes, "running")

    def _mark_pending(self, batch_id: str, indexes: list[int]) -> None:
        self._set_row_state(batch_id, indexes, "pending")

    def _set_row_state(self, batch_id: str, indexes: list[int], state: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_db.batch_rows)
                .where(_db.batch_rows.c.batch_id == batch_id, _db.batch_rows.c.idx.in_(indexes))
                .values(state=state)
            )

    def _record(self, batch_id: str, results: dict[int, dict[str, Any]]) -> None:
        """Store results once each: a row that already has a result keeps it (never recorded twice)."""
        with self._engine.begin() as conn:
            record_results(conn, batch_id, results)

    def _finish_canceled(self, conn: sa.Connection, batch_id: str) -> None:
        leftovers = (
            conn.execute(
                sa.select(_db.batch_rows.c.idx).where(
                    _db.batch_rows.c.batch_id == batch_id, _db.batch_rows.c.state.in_(("pending", "running"))
                )
            )
            .scalars()
            .all()
        )
        canceled = {index: _canceled_result() for index in leftovers}
        record_results(conn, batch_id, canceled, state="canceled")
        conn.execute(
            sa.update(_db.batches)
            .where(_db.batches.c.id == batch_id, _db.batches.c.state.in_(UNFINISHED_STATES))
            .values(state="canceled", completed=time.time())
        )

    def _fail_batch(self, conn: sa.Connection, batch_id: str, reason: str) -> None:
        leftovers = (
            conn.execute(
                sa.select(_db.batch_rows.c.idx).where(
                    _db.batch_rows.c.batch_id == batch_id, _db.batch_rows.c.state.in_(("pending", "running"))
                )
            )
            .scalars()
            .all()
        )
        record_results(conn, batch_id, {index: _failure(reason) for index in leftovers})
        conn.execute(
            sa.update(_db.batches)
            .where(_db.batches.c.id == batch_id)
            .values(state="failed", completed=time.time(), error_message=reason)
        )


def _failure(message: str) -> dict[str, Any]:
    return {"success": False, "errorMessage": message, "consoleOutput": "", "changedFiles": [], "outputParameters": {}}


def _canceled_result() -> dict[str, Any]:
    return _failure("canceled: the batch was canceled before this row ran")


def record_results(
    conn: sa.Connection, batch_id: str, results: dict[int, dict[str, Any]], state: str | None = None
) -> None:
    """Give each row without a result its result and the next completion sequence number.

    Args:
        conn: A connection inside a transaction.
        batch_id: The batch.
        results: Row index -> result (the contract's WebServiceResult fields).
        state: The row state to record; by default ``complete`` or ``failed`` from each result's ``success``.

    """
    if not results:
        return
    last_seq = conn.execute(sa.select(_db.batches.c.last_seq).where(_db.batches.c.id == batch_id)).scalar_one()
    for index in sorted(results):
        result = {key: value for key, value in results[index].items() if key not in ("storedFiles", "initFailed")}
        row_state = state or ("complete" if result["success"] else "failed")
        updated = conn.execute(
            sa.update(_db.batch_rows)
            .where(
                _db.batch_rows.c.batch_id == batch_id,
                _db.batch_rows.c.idx == index,
                _db.batch_rows.c.seq.is_(None),
            )
            .values(state=row_state, result=result, seq=last_seq + 1)
        ).rowcount
        last_seq += updated
    conn.execute(sa.update(_db.batches).where(_db.batches.c.id == batch_id).values(last_seq=last_seq))
