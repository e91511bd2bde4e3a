"""Fair share of the cluster's worker threads among the batches this replica drives.

Each batch's engine loop (``_batch.BatchEngine._schedule``) asks this dispatcher before it submits a chunk. The
dispatcher hands out at most as many chunk slots as the cluster has worker threads, and never more to a batch than
its ``parallelCount``. While more chunks wait than threads are free, the next free thread goes to the user with the
fewest chunks in flight (ties: the user served longest ago), and within that user to the batch with the fewest in
flight (same tie): round-robin across users, then across each user's batches. Without it, Dask's own queue decided,
first come first served, so a small batch waited behind every chunk of another user's large one.

A grant made while a batch's loop waits (when another batch's chunk ends) wakes that loop through its event.

The dispatcher is in-process and per replica: each replica shares out the threads among the batches it drives; two
replicas on one cluster each hand out every thread, and Dask's queue orders their chunks as before.

Chunks are also kept short when rows are slow (:class:`ChunkClock`): a thread is handed over only when a chunk
ends, so a chunk of slow rows would hold it for long while another user waits.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

__all__ = ["CHUNK_SECONDS", "PROBE_ROWS", "ChunkClock", "FairShare"]

# A chunk lasts about this long once its batch's rate is known: a waiting batch gets a thread within it. Measured:
# a chunk costs a few milliseconds of Dask and bookkeeping overhead, about 1 % of this (see the README).
CHUNK_SECONDS = 0.5
# Rows of a chunk before the batch's rate is known (its first chunks): short enough not to hold a thread for long
# when rows are slow, big enough that fast rows pay the overhead of one chunk only.
PROBE_ROWS = 20
# Weight of the newest chunk in the seconds-per-row estimate (the rest is the estimate so far).
CLOCK_WEIGHT = 0.5


@dataclass
class _Batch:
    user: str
    limit: int  # the batch's parallelCount (its own cap on chunks in flight)
    running: int = 0  # chunks in flight, and chunks granted that the loop has not submitted yet
    granted: int = 0  # of those, granted but not yet claimed by the loop
    waiting: int = 0  # chunks the loop has ready, not granted
    served: int = 0  # when it was last granted a thread (the dispatcher's counter)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class FairShare:
    """Grants the cluster's worker threads to batches, fairly across users (see the module docstring).

    All calls come from the event loop's thread (the engine's loops); none blocks.

    Args:
        threads: Worker threads of the cluster (at least 1; update with :meth:`set_threads`).

    """

    def __init__(self, threads: int = 1) -> None:
        self._threads = max(1, threads)
        self._batches: dict[str, _Batch] = {}
        self._users_served: dict[str, int] = {}
        self._clock = itertools.count(1)

    @property
    def threads(self) -> int:
        """Worker threads shared out."""
        return self._threads

    @property
    def shared(self) -> bool:
        """More than one batch is driven here (their chunks compete for the threads)."""
        return len(self._batches) > 1

    def set_threads(self, threads: int) -> None:
        """The cluster's worker threads changed (workers joined or were lost)."""
        self._threads = max(1, threads)
        self._dispatch()

    def join(self, batch_id: str, user: str, limit: int) -> asyncio.Event:
        """A batch starts: it may run up to ``limit`` chunks at once. Returns the event set when it gets a grant."""
        self._batches[batch_id] = _Batch(user, max(1, limit))
        self._users_served.setdefault(user, 0)
        return self._batches[batch_id].wake

    def leave(self, batch_id: str) -> None:
        """A batch ended: its threads (in flight or granted) go to the others."""
        batch = self._batches.pop(batch_id, None)
        if batch is None:
            return
        if not any(other.user == batch.user for other in self._batches.values()):
            self._users_served.pop(batch.user, None)
        self._dispatch()

    def want(self, batch_id: str, chunks: int) -> None:
        """The batch has ``chunks`` ready to submit; grants follow when threads are free.

        Grants it has not claimed yet are among those chunks: never more grants than chunks.
        """
        batch = self._batches[batch_id]
        batch.waiting = max(0, chunks - batch.granted)
        self._dispatch()

    def claim(self, batch_id: str) -> int:
        """How many chunks the batch may submit now (grants not claimed yet); each counts as in flight."""
        batch = self._batches[batch_id]
        granted, batch.granted = batch.granted, 0
        return granted

    def release(self, batch_id: str, chunks: int = 1) -> None:
        """Chunks of the batch ended (or were not submitted after all): their threads are free again."""
        batch = self._batches.get(batch_id)
        if batch is None:
            return
        batch.running = max(0, batch.running - chunks)
        self._dispatch()

    def waits(self, batch_id: str) -> bool:
        """The batch has chunks ready that no thread was granted to yet (another batch holds the threads)."""
        return self._batches[batch_id].waiting > 0

    def running(self, batch_id: str) -> int:
        """Chunks of the batch in flight or granted."""
        batch = self._batches.get(batch_id)
        return batch.running if batch is not None else 0

    def _dispatch(self) -> None:
        free = self._threads - sum(batch.running for batch in self._batches.values())
        while free > 0:
            batch = self._next()
            if batch is None:
                return
            batch.running += 1
            batch.granted += 1
            batch.waiting -= 1
            batch.served = next(self._clock)
            self._users_served[batch.user] = batch.served
            batch.wake.set()
            free -= 1

    def _next(self) -> _Batch | None:
        """The batch the next free thread goes to, or None when no batch can take one."""
        ready = {batch_id: b for batch_id, b in self._batches.items() if b.waiting > 0 and b.running < b.limit}
        if not ready:
            return None
        by_user: dict[str, int] = {}
        for batch in self._batches.values():
            by_user[batch.user] = by_user.get(batch.user, 0) + batch.running
        user = min(
            {b.user for b in ready.values()}, key=lambda name: (by_user[name], self._users_served.get(name, 0), name)
        )
        return min(
            ((batch_id, b) for batch_id, b in ready.items() if b.user == user),
            key=lambda item: (item[1].running, item[1].served, item[0]),
        )[1]


class ChunkClock:
    """A batch's seconds per row, from its chunks' run times; caps chunk sizes so a chunk lasts ~``CHUNK_SECONDS``.

    Fast rows keep the engine's large chunks (that is where throughput comes from): the cap only bites when rows
    are slow enough that a full chunk would hold a thread for longer.
    """

    def __init__(self) -> None:
        self.seconds_per_row: float | None = None

    def observe(self, rows: int, seconds: float) -> None:
        """A chunk ran ``rows`` rows in ``seconds`` (on its worker)."""
        if rows <= 0 or seconds < 0:
            return
        latest = seconds / rows
        previous = self.seconds_per_row
        self.seconds_per_row = latest if previous is None else CLOCK_WEIGHT * latest + (1 - CLOCK_WEIGHT) * previous

    def cap(self) -> int:
        """Most rows the next chunk may have."""
        if self.seconds_per_row is None:
            return PROBE_ROWS
        if self.seconds_per_row <= 0:
            return 1 << 30
        return max(1, int(CHUNK_SECONDS / self.seconds_per_row))
