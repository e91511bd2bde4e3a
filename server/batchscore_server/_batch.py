"""The batch engine: runs each batch's rows on Dask distributed, at most ``parallelCount`` at a time.

Rows go to workers in chunks (one Dask task runs several rows one after another), so scheduler overhead is paid
per chunk, not per row; keeping at most ``min(parallelCount, worker threads)`` chunks in flight bounds how many
rows of one batch run at once. Workers report row starts and results as events (see ``_worker.run_chunk``):
results are written to SQLite as they arrive (through the store, in a worker thread: never on the event loop),
each with a per-batch completion sequence number (the polling cursor), and a row running longer than
``itemTimeout`` is failed and its worker process killed. A restart resumes from the database alone.

Replicas (several servers on one PostgreSQL): the replica that drives a batch holds a lease on it in the database
(owner, expiry), renewed every beat (``min(1 s, lease/5)``) with the stop requests other replicas left for it; a
replica that dies stops renewing, and another claims the batch once the lease expired (``FOR UPDATE SKIP LOCKED``)
and runs its rows without a result. Each row's starts are written with the results (``attempt``). On SQLite the
one server owns every batch.

Faults the engine outlives (issue 13):

- Lost workers: a watchdog compares the workers the scheduler has with the configured count. Dask's LocalCluster
  gives up on a nanny whose replacement worker has not registered within ``distributed.deploy.lost-worker-timeout``
  (15 s by default, 120 s here; a busy machine took longer after a timeout kill) or that closed itself (its worker
  failed to start), and then runs with fewer workers for good; the watchdog has it start them again
  (``LocalCluster.scale``). A nanny that closed itself stays among the cluster's workers until that timeout, and
  ``scale`` replaces none it holds: the watchdog drops closed ones first, so one starts at once. With an external
  scheduler the engine cannot start workers: it logs a warning while batches wait without any, and ``/status``
  shows ``warn``; the rows run once workers join.
- Database write errors (a full disk, an I/O error): every database call of the engine is retried with backoff for
  up to ``DB_RETRY_SECONDS``. A batch whose writes still fail ends ``failed`` with the error as its reason; when
  even that cannot be written, the error is logged and the batch is left as it is in the database, unfinished, so
  the next start resumes it. Either way its engine task ends and no other batch is held up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dask
import sqlalchemy.exc
from distributed import Client, Event, Future, LocalCluster
from distributed import wait as wait_for_futures
from distributed.core import Status
from distributed.scheduler import KilledWorker

from batchscore_server import _db, _vectorized
from batchscore_server._execution import StoredResult, stored_result
from batchscore_server._fair import ChunkClock, FairShare
from batchscore_server._policy import FailurePolicy, policy_canceled_result, retry_delay
from batchscore_server._settings import Settings
from batchscore_server._store import FINAL_STATES, UNFINISHED_STATES, Row, Store
from batchscore_server._worker import (
    CANCEL_SETTLE_SECONDS,
    ROW_EVENTS_TOPIC,
    cancel_event_name,
    kill_worker_process,
    run_chunk,
)

log = logging.getLogger("batchscore_server.batch")

__all__ = ["FINAL_STATES", "UNFINISHED_STATES", "BatchEngine"]
_T = TypeVar("_T")
MAX_CHUNK_ROWS = 500
CHUNKS_PER_SLOT = 4  # several chunks per parallel slot spread the rows evenly over the workers
TICK_SECONDS = 0.1  # how often buffered results are written and running rows checked against itemTimeout
WORKER_DIED = "the worker process running this row died (it crashed, was killed, or exceeded its memory limit)"
# A row alone in its task is failed for its worker's death only when this many workers died running it: once can
# be another's doing (a worker killed from outside, or a replacement for a killed worker that died starting up on
# a busy machine), and the row never ran to completion.
MAX_ROW_DEATHS = 2
# A row the scheduler shows running but whose start event has not come (a row that holds the GIL sends none) is
# timed out this much later than one that reported its start: a fresh worker's setup before its first row took
# over 10 s on a busy machine, and counted against the row (an innocent row was timed out and its worker killed).
UNREPORTED_START_GRACE_SECONDS = 30.0
# A timed-out row costs a worker process (killed, then replaced): shorter limits would spend the machine on
# restarting workers. Enforced when a batch starts (400 naming itemTimeout).
MIN_ITEM_TIMEOUT_SECONDS = 1.0
WATCHDOG_SECONDS = 1.0  # how often the worker count is compared with the configured one
SHORT_OF_WORKERS_WARNING_SECONDS = 60.0  # a cluster short of workers this long is logged (again every as long)
# Database calls failing with these are retried (a full disk may be freed, a busy or failing disk may recover:
# SQLite reports "database or disk is full" and "disk I/O error" as OperationalError), waiting
# DB_RETRY_FIRST_SECONDS, then twice as long each time up to DB_RETRY_MAX_WAIT_SECONDS, for at most
# DB_RETRY_SECONDS in all. Other errors (a bug) fail the batch at once.
DB_RETRYABLE = (OSError, sqlalchemy.exc.OperationalError)
DB_RETRY_SECONDS = 120.0
DB_RETRY_FIRST_SECONDS = 0.1
DB_RETRY_MAX_WAIT_SECONDS = 5.0

# Scheduler settings from the measured pitfalls: a dead worker must fail its task at once instead of re-running
# it elsewhere (allowed-failures 0), and no worker may queue a second task it cannot start (worker-saturation 1.0),
# else one death also fails an innocent queued chunk. The workers' statistical profiler samples every 10 ms even
# when idle: off, an idle worker went from 4.5 % to 1.5 % of a core (measured), CPU the rows need on small hosts.
DASK_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    # The scheduler, the workers and their comms each keep their last N messages and events for debugging; with
    # row results inside those messages, the default 1,000 held tens of megabytes per process.
    "distributed.admin.low-level-log-length": 100,
    # LocalCluster closes a nanny whose replacement worker has not registered this long after the old one left
    # (default 15 s), and never starts another (the watchdog does). A replacement took about 50 s on a loaded
    # 2-core machine: closed at 15 s, it was started again from scratch, for nothing.
    "distributed.deploy.lost-worker-timeout": "120s",
}

PAGE_ROWS = 20_000  # pending rows read at a time
RECEIPT_SWEEP_SECONDS = 60.0  # how often a replica removes the receipts (and deletes) of replicas that died
CLAIM_BATCHES = 4  # orphaned batches a replica takes over per heartbeat (the others leave some for the rest)


@dataclass
class _Live:
    """What the engine knows about a running batch beyond the database."""

    running: dict[int, tuple[float, str]] = field(default_factory=dict)  # started, no result: (monotonic, worker)
    results: dict[int, StoredResult] = field(default_factory=dict)  # results not yet written
    # Rows of the chunks in flight, and those of them with a result: a start event counts only for a row in the
    # first set and not in the second, so a late one cannot mark a finished row running. Both are kept to the
    # chunks in flight, as a set of every recorded row grew by tens of megabytes for a million rows.
    in_flight: set[int] = field(default_factory=set)
    recorded: set[int] = field(default_factory=set)
    deaths: Counter[int] = field(default_factory=Counter)  # row -> workers that died while it ran alone
    # Rows that reported their start since the last write: their attempt is counted with the next results.
    started: set[int] = field(default_factory=set)
    cancel_requested: bool = False
    fail_reason: str | None = None
    clock: ChunkClock = field(default_factory=ChunkClock)  # its seconds per row, which cap its chunks' rows
    # Issue 15: the batch's itemRetries and failure policy (set when it starts running).
    item_retries: int = 0
    retry_timeouts: bool = False
    policy: FailurePolicy | None = None
    policy_stopped: bool = False  # the policy stopped it: rows that never ran are canceled, the batch fails
    # Rows whose failed run is retried (not recorded): index -> retries before it. Their chunk still runs (its
    # return repeats the failure, which is ignored); once it is released they wait in ``delayed`` for their backoff.
    held: dict[int, int] = field(default_factory=dict)
    delayed: dict[int, tuple[float, Row]] = field(default_factory=dict)  # index -> (monotonic due time, row)


class BatchEngine:
    """Starts, resumes, cancels and finishes batches.

    Args:
        settings: Server settings (workers, scheduler address, data directories).
        store: The database; every call to it runs in a worker thread.

    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, _Live] = defaultdict(_Live)
        self._scheduler_address = ""
        self._killed_on_purpose: set[str] = set()  # worker addresses killed to end a timed-out row
        # The engine's database work runs in a thread of its own: off the event loop, and never queued behind
        # the routes' reads (polls) in the loop's shared pool; one thread, as SQLite has one writer at a time.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-engine-db")
        self._cluster_lock = threading.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._lease_keeper: asyncio.Task[None] | None = None
        self._leased: set[str] = set()  # batches driven here whose lease this replica took
        self._fair = FairShare()  # shares the worker threads out among the batches driven here (see _fair)
        # This process's name in the batches' leases: unique per start, so a restarted replica never mistakes the
        # leases of its previous life (whose rows may still run) for its own.
        self.replica_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

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
            abandoned = threading.Event()
            try:
                address = await asyncio.to_thread(self._start_cluster, abandoned)
            except asyncio.CancelledError:
                # The thread cannot be stopped: it closes the cluster itself once started (see _start_cluster).
                with self._cluster_lock:
                    abandoned.set()
                raise
        self._scheduler_address = str(address)
        self._client = await Client(address, asynchronous=True)
        self._client.subscribe_topic(ROW_EVENTS_TOPIC, self._on_row_event)
        self._watchdog = asyncio.create_task(self._watch_workers(), name="batch-engine-watchdog")
        await self._resume()
        self._lease_keeper = asyncio.create_task(self._keep_leases(), name="batch-engine-leases")

    def _start_cluster(self, abandoned: threading.Event) -> str:
        """Start the local cluster (blocking); returns the scheduler's address.

        A start that was given up on (the server's start timed out) closes the cluster at once, so its scheduler
        and worker processes do not outlive the server.
        """
        cluster = LocalCluster(
            n_workers=self._settings.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never collide with another cluster on 8787
            # Imported before a worker (a replacement too) registers, not by its first row: on a busy machine the
            # imports took seconds that counted against that row's itemTimeout.
            preload=["batchscore_server._worker"],
            # Dask's default is the machine's memory divided among the workers; a worker over 95 % of its limit
            # is killed by its nanny (the row fails with WORKER_DIED) and replaced.
            memory_limit=self._settings.worker_memory_bytes or "auto",
        )
        with self._cluster_lock:
            if not abandoned.is_set():
                self._cluster = cluster
                return str(cluster.scheduler_address)
        cluster.close()
        raise asyncio.CancelledError

    async def close(self) -> None:
        """Stop scheduling (rows keep their recorded results) and disconnect from Dask."""
        for keeper in (self._watchdog, self._lease_keeper):
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await keeper
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.close()
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.close)
        self._db_thread.shutdown(wait=True)

    @property
    def scheduler_address(self) -> str:
        """The Dask scheduler's address (for operators and tools that attach to the same cluster)."""
        return self._scheduler_address

    async def worker_count(self) -> int:
        """Worker threads the cluster has now."""
        # Asked of the scheduler each time: the client's cached scheduler_info() misses workers that join later.
        threads: dict[str, int] = await self.client.nthreads()
        return sum(threads.values())

    def running_count(self, batch_id: str) -> int:
        """Rows of the batch that have started and have no result yet."""
        live = self._live.get(batch_id)
        return len(live.running) if live else 0

    def launch(self, batch_id: str, claimed: bool = False) -> None:
        """Start running a batch (that is in the database with pending rows), once this replica holds its lease.

        Args:
            batch_id: The batch.
            claimed: This replica took its lease already; else it takes it first, and leaves the batch alone when
                another live replica holds it.

        """
        previous = self._tasks.get(batch_id)
        if previous is None:
            self._live.pop(batch_id, None)
            run: Coroutine[Any, Any, None] = self._run(batch_id, claimed)
        else:
            # Its last run is still ending (it wrote the batch's final state, and a retry came in before its task
            # was gone): run again once it has, or the retried rows would wait for a restart.
            run = self._run_after(previous, batch_id, claimed)
        self._tasks[batch_id] = asyncio.create_task(run, name=f"batch-{batch_id}")

    async def _run_after(self, previous: asyncio.Task[None], batch_id: str, claimed: bool) -> None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(previous)
        self._live.pop(batch_id, None)
        await self._run(batch_id, claimed)

    async def cancel(self, batch_id: str, fail_reason: str | None = None) -> None:
        """Stop a batch: no row starts after this returns; running rows finish and keep their results.

        Args:
            batch_id: The batch.
            fail_reason: End the batch ``failed`` with this reason instead of ``canceled`` (its service was
                deleted, say); rows that never ran get the reason as their error.

        """
        if batch_id not in self._tasks:
            # Driven by another replica (or by none: it died, or the batch had not started): the request goes
            # through the database, and the workers' flag through Dask when the replicas share the cluster.
            await self._in_db_thread(self._store.request_stop, batch_id, fail_reason or "")
        await self._stop_here(batch_id, fail_reason)
        # Workers cache the cancel flag briefly (see _worker): waiting longer than that cache means no row of
        # this batch can start after we return.
        await asyncio.sleep(CANCEL_SETTLE_SECONDS)
        if batch_id not in self._tasks and await self._in_db_thread(self._store.claim_batch, batch_id, self.replica_id):
            # No live replica drives it: this one ends it.
            await self._in_db_thread(self._finish_stopped, batch_id)
            with contextlib.suppress(Exception):
                await Event(cancel_event_name(batch_id), client=self.client).clear()

    async def _stop_here(self, batch_id: str, fail_reason: str | None) -> None:
        """Stop starting the batch's rows here: its flags (when driven here), and the workers' (the Dask event)."""
        if batch_id in self._tasks:
            live = self._live[batch_id]
            live.cancel_requested = True
            live.fail_reason = live.fail_reason or fail_reason
        await Event(cancel_event_name(batch_id), client=self.client).set()

    async def wait(self, batch_id: str) -> None:
        """Wait until the engine is done with a batch (running rows have finished and are recorded).

        A batch another replica drives is watched in the database until it ends, or until its replica's lease
        runs out (it died): this replica then ends it (see :meth:`cancel`).
        """
        task = self._tasks.get(batch_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
            return
        while True:
            batch = await self._in_db_thread(self._store.batch_state, batch_id)
            if batch is None or batch["state"] not in UNFINISHED_STATES:
                return
            if await self._in_db_thread(self._store.claim_batch, batch_id, self.replica_id):
                await self._in_db_thread(self._finish_stopped, batch_id)
                return
            await asyncio.sleep(self._heartbeat_seconds)

    @property
    def _heartbeat_seconds(self) -> float:
        """How often leases are renewed and stop requests read: a fifth of the lease, at most a second."""
        return min(1.0, self._settings.lease_seconds / 5)

    # -- internals -------------------------------------------------------------------------------------------

    async def _in_db_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run blocking database work in the engine's own thread, retrying errors a full or failing disk gives.

        A failed call's transaction was rolled back, so running it again is running it for the first time.

        Raises:
            The last error when the work still fails after ``DB_RETRY_SECONDS``.

        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + DB_RETRY_SECONDS
        pause = DB_RETRY_FIRST_SECONDS
        while True:
            try:
                return await loop.run_in_executor(self._db_thread, function, *args)
            except DB_RETRYABLE as error:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("database call %s failed (%r): retrying in %g s", function.__name__, error, pause)
            await asyncio.sleep(pause)
            pause = min(2 * pause, DB_RETRY_MAX_WAIT_SECONDS)

    async def _watch_workers(self) -> None:
        """Keep the cluster at its configured size, whatever killed its workers (see the module docstring)."""
        short_since: float | None = None
        warned = 0.0
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            try:
                threads: dict[str, int] = await self.client.nthreads()
            except Exception as error:  # the scheduler is unreachable: the next tick asks again
                log.warning("cannot count the cluster's workers: %r", error)
                continue
            workers = len(threads)
            self._fair.set_threads(sum(threads.values()))
            wanted = self._settings.workers if self._cluster is not None else 1
            if workers >= wanted:
                short_since = None
                continue
            now = time.monotonic()
            short_since = now if short_since is None else short_since
            # On the cluster's own loop (its thread): the cluster's state is not the server loop's to touch. The
            # loop is None only once the cluster is closed.
            if self._cluster is not None and self._cluster.loop is not None:
                self._cluster.loop.add_callback(self._replace_closed_nannies, self._cluster, self._settings.workers)
            if (
                now - short_since >= SHORT_OF_WORKERS_WARNING_SECONDS
                and now - warned >= SHORT_OF_WORKERS_WARNING_SECONDS
            ):
                warned = now
                log.warning(
                    "the Dask cluster has been short of workers for %.0f s (%d of %d now); batches running: %s",
                    now - short_since,
                    workers,
                    wanted,
                    ", ".join(self._tasks) or "none",
                )

    @staticmethod
    def _replace_closed_nannies(cluster: LocalCluster, workers: int) -> None:
        """Drop the cluster's closed nannies, then start a nanny for each configured worker it lacks.

        Run it on the cluster's own loop. A nanny closes itself when the worker it starts in place of a dead one fails
        to start; LocalCluster keeps it among its workers until ``lost-worker-timeout`` (120 s here) after its worker
        left, and ``scale`` starts no replacement for a worker it still holds: the cluster stayed a worker short for two
        minutes. A nanny still restarting its worker is running, not closed: it is kept.
        """
        for name, nanny in list(cluster.workers.items()):
            if nanny.status in (Status.closed, Status.failed):
                log.warning("the Dask nanny %r is %s: starting another in its place", name, nanny.status.name)
                del cluster.workers[name]
        cluster.scale(workers)

    def _on_row_event(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        live = self._live.get(message["batch"])
        if live is None:
            return  # a late event of a batch this process no longer runs; the chunk's return has it too
        now = time.monotonic()
        for index in message["started"]:  # starts first: a row can start and finish within one message
            if index in live.in_flight and index not in live.recorded:
                live.running[int(index)] = (now, message["worker"])
                live.started.add(int(index))
        for index, result in message["done"]:
            live.running.pop(int(index), None)
            live.results[int(index)] = StoredResult(*result)  # msgpack made the tuple a list

    async def _resume(self) -> None:
        if self._settings.shared_database:
            return  # other replicas may be driving them: their leases are taken over once expired (_keep_leases)
        for batch_id in await self._in_db_thread(self._store.unfinished_batch_ids):
            # The only server of its database: their earlier holder is gone. Rows without a result (including any
            # that were running when the server stopped) run again.
            log.info("resuming batch %s", batch_id)
            await self._in_db_thread(self._store.claim_batch, batch_id, self.replica_id, True)
            self.launch(batch_id, claimed=True)

    async def _keep_leases(self) -> None:
        """Renew the leases of the batches driven here, act on stop requests, and take over orphaned batches.

        A replica that died (kill -9) stops renewing; once its leases expire, the first replica to claim a batch
        (``FOR UPDATE SKIP LOCKED``) drives it on: its rows without a result run again, each as a new attempt.
        """
        swept = time.monotonic()
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await self._renew_and_claim()
                if self._settings.shared_database and time.monotonic() - swept > RECEIPT_SWEEP_SECONDS:
                    swept = time.monotonic()
                    await self._in_db_thread(self._store.remove_unfinished_receipts, False)
            except Exception:  # the database is away: the next beat tries again (the engine retries its own calls)
                log.warning("could not renew the batch leases of %s", self.replica_id, exc_info=True)

    async def _renew_and_claim(self) -> None:
        driven = list(self._leased)
        if driven:
            kept, stops = await self._in_db_thread(self._store.renew_leases, self.replica_id, driven)
            for batch_id in driven:
                task = self._tasks.get(batch_id)
                if task is None:
                    continue
                if batch_id not in kept:
                    # Another replica took it over (this one missed renewing in time): it drives the batch now.
                    log.warning("batch %s was taken over by another replica; no longer driving it here", batch_id)
                    task.cancel()
                elif batch_id in stops and not self._live[batch_id].cancel_requested:
                    log.info("batch %s: stop requested through another replica", batch_id)
                    await self._stop_here(batch_id, stops[batch_id] or None)
        if not self._settings.shared_database:
            return  # the one server of a SQLite database resumed every batch at its start (_resume)
        for batch_id in await self._in_db_thread(self._store.claim_free_batches, self.replica_id, CLAIM_BATCHES):
            log.info("taking over batch %s (its replica's lease expired)", batch_id)
            self.launch(batch_id, claimed=True)

    async def _run(self, batch_id: str, claimed: bool) -> None:
        if not claimed:
            try:
                claimed = await self._in_db_thread(self._store.claim_batch, batch_id, self.replica_id)
            except Exception:
                log.exception("batch %s could not be claimed: a replica takes it over once its lease expires", batch_id)
            if not claimed:  # another live replica drives it
                if self._tasks.get(batch_id) is asyncio.current_task():
                    self._tasks.pop(batch_id, None)
                return
        self._leased.add(batch_id)
        try:
            await self._schedule(batch_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the batch could not run at all: record why instead of dying silently
            log.exception("batch %s failed", batch_id)
            try:
                await self._in_db_thread(self._fail_batch, batch_id, f"the batch engine failed: {error!r}")
            except Exception:
                log.exception("batch %s could not be marked failed: it is resumed at the next start", batch_id)
        finally:
            if self._tasks.get(batch_id) is asyncio.current_task():  # not a run launched after this one
                self._tasks.pop(batch_id, None)
                self._leased.discard(batch_id)
                self._live.pop(batch_id, None)
                self._fair.leave(batch_id)
            with contextlib.suppress(Exception):
                await Event(cancel_event_name(batch_id), client=self.client).clear()

    async def _schedule(self, batch_id: str) -> None:
        live = self._live[batch_id]
        batch = await self._in_db_thread(self._store.start_batch, batch_id)
        live.item_retries = int(batch["item_retries"] or 0)
        live.retry_timeouts = bool(batch["retry_timeouts"])
        live.policy = FailurePolicy.of(batch)
        await self._apply_policy(batch_id, batch)  # a resumed batch that broke its policy already stops here
        # Every row is pending or counted in one of the final states (a retry resets the counts it re-runs).
        pending_count = batch["total"] - sum(batch[column] for column in _db.COUNTED_STATES.values())
        item_timeout: float | None = batch["item_timeout"]
        threads = await self.worker_count()
        self._fair.set_threads(threads)
        slots = max(1, min(batch["parallel_count"], threads or 1))
        # Its chunks go in flight only when the fair-share dispatcher grants them a worker thread (see _fair).
        granted = self._fair.join(batch_id, batch["owner"], slots)
        # One row per task when rows are timed: a row that holds the GIL sends no events, and the task's own start
        # is then the only clock that names the right row.
        chunk_rows = 1 if item_timeout is not None else MAX_CHUNK_ROWS
        # A vectorized service's rows run in calls of up to rows_per_call: a task holds whole calls (see _vectorized).
        rows_per_call = _vectorized.batch_rows(batch["spec"])
        if rows_per_call is not None:
            chunk_rows = _vectorized.task_rows(rows_per_call, item_timeout is not None)
        undispatched = pending_count  # rows not read into the queue yet
        # Pending rows are read a page at a time as the queue runs low: reading a million rows up front cost
        # seconds before the first row ran, and their memory for the whole batch.
        # The first page is small, so the first rows start at once (P7: 1M rows).
        pages = _PendingRows(self._store, batch_id, 2 * slots * chunk_rows, max(PAGE_ROWS, 2 * slots * chunk_rows))
        queue: deque[list[Row]] = deque()
        in_flight: dict[Future[Any], list[Row]] = {}
        init_failure: str | None = None

        def submit_from_queue() -> None:
            while True:
                self._fair.want(batch_id, 0 if live.cancel_requested else len(queue))
                grants = self._fair.claim(batch_id)
                if not grants:
                    granted.clear()  # every grant so far is claimed
                    return
                if live.cancel_requested:  # granted before the cancel: the threads go back
                    self._fair.release(batch_id, grants)
                    continue
                for unused in range(grants, 0, -1):
                    if not queue:  # cannot happen (grants never exceed the chunks asked for): hand them back
                        self._fair.release(batch_id, unused)
                        break
                    submit(take_chunk())

        def take_chunk() -> list[Row]:
            """The queue's next chunk, cut to the rows that run within about CHUNK_SECONDS (see _fair)."""
            chunk = queue.popleft()
            # A vectorized batch's first chunk (its probe) is one call: the service chose that as its unit of work.
            cap = live.clock.cap() if rows_per_call is None else max(rows_per_call, live.clock.cap())
            if len(chunk) > cap:
                queue.appendleft(chunk[cap:])
                chunk = chunk[:cap]
            return chunk

        def submit(chunk: list[Row]) -> None:
            future = self.client.submit(
                run_chunk,
                batch_id,
                batch["spec"],
                chunk,
                str(self._settings.scratch_dir),
                str(self._settings.artifacts_dir / batch_id),
                key=f"batch-{batch_id}-{uuid.uuid4().hex}",
                pure=False,
            )
            in_flight[future] = chunk
            live.in_flight.update(index for index, _ in chunk)

        while (queue or in_flight or live.delayed or not pages.exhausted) and init_failure is None:
            _queue_due_retries(live, queue)
            if len(queue) < 2 * slots and not pages.exhausted and not live.cancel_requested:
                page = await self._in_db_thread(pages.next)
                queue.extend(guided_chunks(page, undispatched, slots, chunk_rows))
                undispatched -= len(page)
            submit_from_queue()
            if not in_flight and (live.cancel_requested or not queue):
                if live.delayed and not live.cancel_requested:
                    await asyncio.sleep(TICK_SECONDS)  # nothing runs: wait for the next retry's backoff to pass
                    continue
                break
            if in_flight and not self._fair.shared:
                # The wait ends by a timeout (a tick), or raises the first erred future's error: either way,
                # _collect reads each finished future on its own.
                with contextlib.suppress(Exception):
                    await wait_for_futures(list(in_flight), timeout=TICK_SECONDS, return_when="FIRST_COMPLETED")
            else:  # other batches hold threads: one they free may be granted to this batch meanwhile
                await _chunk_or_grant(list(in_flight), granted)
            finished = [(future, in_flight.pop(future)) for future in list(in_flight) if future.done()]
            self._fair.release(batch_id, len(finished))
            # Workers get their next chunks before the finished ones are written down: a worker otherwise idled
            # through each chunk's bookkeeping (100k trivial rows: 15.5k rows/s before, 17.7k after).
            submit_from_queue()
            init_failure = await self._flush(batch_id)
            for future, chunk in finished:
                init_failure = await self._collect(batch_id, future, chunk, queue) or init_failure
                _release(live, chunk)
            if item_timeout is not None:
                await self._enforce_timeout(batch_id, item_timeout, in_flight, queue)
        if in_flight:
            await self.client.cancel(list(in_flight))
        init_failure = await self._flush(batch_id) or init_failure
        if init_failure is not None:
            await self._in_db_thread(self._fail_batch, batch_id, init_failure)
        elif live.cancel_requested:
            await self._in_db_thread(self._finish_stopped, batch_id)
        else:
            await self._in_db_thread(self._store.complete_batch, batch_id)

    async def _flush(self, batch_id: str) -> str | None:
        """Write the results events brought; returns the reason when initCode failed (the batch cannot run)."""
        live = self._live[batch_id]
        if not live.results and not live.started:
            return None
        results, live.results = live.results, {}
        return await self._record(batch_id, results)

    async def _collect(
        self, batch_id: str, future: Future[Any], chunk: list[Row], queue: deque[list[Row]]
    ) -> str | None:
        """Record a finished chunk; returns the reason when initCode failed (the batch cannot run at all)."""
        live = self._live[batch_id]
        for index, _ in chunk:
            live.running.pop(index, None)
        try:
            outcome = await future
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the engine is stopping: not the chunk's doing
            return await self._fail_rows(batch_id, chunk, "the row could not be run: CancelledError")
        except KilledWorker as death:
            await self._requeue_or_fail_lost(
                batch_id, death.last_worker.address, await self._without_result(batch_id, chunk), queue
            )
            return None
        # Any other BaseException the task raised (its rows' own are caught on the worker, so this one came from
        # outside them): failing the rows lets the batch go on.
        except BaseException as error:
            return await self._fail_rows(batch_id, chunk, f"the row could not be run: {error!r}")
        if "seconds" in outcome:
            live.clock.observe(len(outcome["rows"]), outcome["seconds"])
        # The return repeats every result; those its events brought are recorded (or wait in live.results for the
        # next flush) already, and asking the database about them again was a third of the engine's writes.
        reason = await self._record(
            batch_id,
            {
                int(index): StoredResult(*result)
                for index, result in outcome["rows"].items()
                if int(index) not in live.recorded and int(index) not in live.results
            },
        )
        if outcome["stopped"] and not live.cancel_requested:
            queue.appendleft(await self._without_result(batch_id, chunk))  # a stale cancel flag: run them after all
        return reason

    async def _fail_rows(self, batch_id: str, chunk: list[Row], message: str) -> str | None:
        """Fail the rows of a chunk that have no result yet with ``message``."""
        failed = stored_result(failure_result(message))
        return await self._record(batch_id, {index: failed for index, _ in await self._without_result(batch_id, chunk)})

    async def _requeue_or_fail_lost(self, batch_id: str, worker: str, lost: list[Row], queue: deque[list[Row]]) -> None:
        """Queue again the rows (without a result) of a task whose worker died, or fail the row that killed it.

        The timed-out row of a worker killed on purpose has its result already, so is not among ``lost``.
        """
        if worker in self._killed_on_purpose:
            # The worker was killed for another row's timeout: these rows were only caught in the blast.
            queue.appendleft(lost)
        elif len(lost) > 1:
            # Which row killed the worker is unknown: run the rows one per task to find it.
            queue.extendleft([[row] for row in reversed(lost)])
        elif lost and self._live[batch_id].item_retries:
            # With itemRetries a death is a retryable failure like any other: retried (after its backoff) while
            # retries are left, its error kept as an attempt; then the row fails.
            await self._record(
                batch_id, {lost[0][0]: stored_result({**failure_result(WORKER_DIED), "retryable": True})}
            )
        elif lost:
            index = lost[0][0]
            deaths = self._live[batch_id].deaths
            deaths[index] += 1
            if deaths[index] < MAX_ROW_DEATHS:
                queue.appendleft(lost)
            else:
                await self._record(batch_id, {index: stored_result(failure_result(WORKER_DIED))})

    async def _enforce_timeout(
        self, batch_id: str, item_timeout: float, in_flight: dict[Future[Any], list[Row]], queue: deque[list[Row]]
    ) -> None:
        live = self._live[batch_id]
        now = time.monotonic()
        # A timed task holds one row, or one call of a vectorized service, whose rows all start when it starts.
        unseen = {f.key: [i for i, _ in rows] for f, rows in in_flight.items() if rows[0][0] not in live.running}
        if unseen:
            # A row holding the GIL cannot send its start event; the scheduler still knows where its task runs.
            processing: dict[str, list[str]] = await self.client.processing()
            for worker, keys in processing.items():
                for key in keys:
                    for index in unseen.get(key, ()):
                        if index not in live.recorded:
                            # Its clock starts later (the grace); a start event, when one comes, restarts it then.
                            live.running[index] = (now + UNREPORTED_START_GRACE_SECONDS, worker)
        for index, (started, worker) in list(live.running.items()):
            if now - started <= item_timeout:
                continue
            future = next((f for f, rows in in_flight.items() if any(i == index for i, _ in rows)), None)
            live.running.pop(index, None)
            timed_out = failure_result(f"timed out: the row ran longer than itemTimeout ({item_timeout:g} s)")
            await self._record(batch_id, {index: stored_result({**timed_out, "retryable": live.retry_timeouts})})
            if future is None:
                continue
            chunk = in_flight.pop(future)
            self._fair.release(batch_id)
            # Cancel first so the scheduler cannot re-run the chunk, then kill the process: a thread cannot be
            # interrupted, and the nanny starts a fresh worker.
            await self.client.cancel([future])
            self._killed_on_purpose.add(worker)
            try:
                await self.client.run(kill_worker_process, workers=[worker], nanny=True)
            except Exception:
                log.exception("could not kill worker %s after a timeout", worker)
            await self._flush(batch_id)
            _release(live, chunk)
            rest = await self._without_result(batch_id, chunk)
            if rest:
                queue.appendleft(rest)

    async def _without_result(self, batch_id: str, rows: list[Row]) -> list[Row]:
        """Those of ``rows`` that have no result and are not waiting for a retry (those run after their backoff)."""
        live = self._live[batch_id]
        rows = [row for row in rows if row[0] not in live.held and row[0] not in live.delayed]
        return await self._in_db_thread(self._store.without_result, batch_id, rows)

    async def _record(self, batch_id: str, results: dict[int, StoredResult]) -> str | None:
        """Store results once each; returns the reason when one reports that initCode failed."""
        init_failure = next((r.init_failure for r in results.values() if r.init_failure is not None), None)
        if init_failure is not None:
            return init_failure
        live = self._live[batch_id]
        # A row held for a retry (or waiting for it) has no result: a failure of it here is the chunk's return
        # repeating the one its events brought.
        results = {
            index: result for index, result in results.items() if index not in live.held and index not in live.delayed
        }
        if not results and not live.started:
            return None  # nothing to write: an empty transaction is not worth the database thread's time
        # Starts are written with the results: a row whose start is written and that has no result when its
        # replica dies runs again as attempt 2. A start that never got written (the replica died within a tick
        # of it) leaves that row at attempt 1 when it runs again.
        started, live.started = live.started, set()
        held, counts = await self._in_db_thread(
            self._store.record_attempts,
            batch_id,
            results,
            started,
            live.item_retries,
            live.policy is not None and bool(results),
        )
        live.held.update(held)
        # After the write, not before: a late start event that arrived meanwhile is undone here.
        live.recorded.update(index for index in results if index in live.in_flight and index not in held)
        for index in results:
            live.running.pop(index, None)
        if counts is not None:
            await self._apply_policy(batch_id, counts)
        return None

    async def _apply_policy(self, batch_id: str, counts: Any) -> None:
        """Stop the batch when its counts break its failure policy: no row starts after, running rows finish."""
        live = self._live[batch_id]
        if live.policy is None or live.cancel_requested:
            return
        reason = live.policy.breach(int(counts["complete_count"]), int(counts["failed_count"]))
        if reason is not None:
            log.info("batch %s: %s", batch_id, reason)
            live.policy_stopped = True
            await self._stop_here(batch_id, reason)

    def _finish_stopped(self, batch_id: str) -> None:
        """End a stopped batch ``canceled`` (or ``failed`` with its fail reason); blocking, run it in a thread."""
        live = self._live.get(batch_id)
        reason = live.fail_reason if live is not None else None
        if live is not None and live.policy_stopped and reason is not None:
            # Rows that never ran (or waited for a retry) did not fail: they are canceled, the finished ones kept.
            self._store.fail_batch(batch_id, reason, policy_canceled_result(), "canceled")
            return
        if reason is None:
            requested = self._store.request_stop(batch_id, "")  # the reason another replica was asked with
            reason = (requested["stop_requested"] if requested is not None else None) or None
        if reason is not None:
            self._fail_batch(batch_id, reason)
            return
        self._store.cancel_batch(batch_id, canceled_result())

    def _fail_batch(self, batch_id: str, reason: str) -> None:
        """End a batch ``failed``; rows without a result get ``reason``. Blocking: run it in a thread."""
        self._store.fail_batch(batch_id, reason, failure_result(reason))


def guided_chunks(rows: list[Row], left: int, slots: int, largest: int) -> list[list[Row]]:
    """Split rows into chunks that shrink as the batch nears its end (guided self-scheduling).

    Each chunk gets its share of the rows still to dispatch (``left``, counting ``rows``), spread over ``slots``
    times ``CHUNKS_PER_SLOT``, at most ``largest``: big chunks keep the scheduler's cost per row low, and small
    ones at the end keep one worker from running a long last chunk while the others have nothing left.
    """
    chunks: list[list[Row]] = []
    start = 0
    while start < len(rows):
        size = max(1, min(largest, math.ceil((left - start) / (slots * CHUNKS_PER_SLOT))))
        chunks.append(rows[start : start + size])
        start += size
    return chunks


async def _chunk_or_grant(futures: list[Future[Any]], granted: asyncio.Event) -> None:
    """Wait up to a tick for one of ``futures`` to end, or for the fair-share dispatcher to grant a thread."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(granted.wait())}
    if futures:
        waiters.add(
            asyncio.ensure_future(wait_for_futures(futures, timeout=TICK_SECONDS, return_when="FIRST_COMPLETED"))
        )
    try:
        await asyncio.wait(waiters, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        # An erred future's error is read by _collect; here it is only retrieved, so asyncio does not log it.
        await asyncio.gather(*waiters, return_exceptions=True)


def _release(live: _Live, chunk: list[Row]) -> None:
    """Forget a chunk that is no longer in flight (its rows' results are recorded, or it is queued again).

    Its rows held for a retry now wait for their backoff (``_queue_due_retries`` queues them once it has passed).
    """
    now = time.monotonic()
    for row in chunk:
        index = row[0]
        live.in_flight.discard(index)
        live.recorded.discard(index)
        live.running.pop(index, None)
        retries = live.held.pop(index, None)
        if retries is not None:
            live.delayed[index] = (now + retry_delay(retries), row)


def _queue_due_retries(live: _Live, queue: deque[list[Row]]) -> None:
    """Put the rows whose retry backoff has passed at the front of the queue, each alone in its chunk."""
    if not live.delayed or live.cancel_requested:
        return
    now = time.monotonic()
    due = sorted((index for index, (at, _) in live.delayed.items() if at <= now), reverse=True)
    for index in due:
        queue.appendleft([live.delayed.pop(index)[1]])


class _PendingRows:
    """Reads a batch's rows without a result in index order, a page at a time."""

    def __init__(self, store: Store, batch_id: str, first_page_rows: int, page_rows: int) -> None:
        self._store = store
        self._batch_id = batch_id
        self._next_rows = first_page_rows
        self._page_rows = page_rows
        self._after = -1
        self.exhausted = False

    def next(self) -> list[Row]:
        """The next page of ``(index, inputs)``; blocking (run it in a thread)."""
        page = self._store.pending_rows(self._batch_id, self._after, self._next_rows)
        if len(page) < self._next_rows:
            self.exhausted = True
        self._next_rows = self._page_rows
        if page:
            self._after = page[-1][0]
        return page


def failure_result(message: str) -> dict[str, Any]:
    """A row result for a row that failed outside its own code (timeout, dead worker, batch failure)."""
    return {"success": False, "errorMessage": message, "consoleOutput": "", "changedFiles": [], "outputParameters": {}}


def canceled_result() -> dict[str, Any]:
    """The result of a row that never ran because its batch was canceled."""
    return failure_result("canceled: the batch was canceled before this row ran")
